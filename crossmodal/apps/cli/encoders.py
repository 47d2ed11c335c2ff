"""`crossmodal encoders`: the registered encoders, or the details of one."""

from __future__ import annotations

import argparse
import inspect
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encoders",
        help="list the video and music encoders, or describe one",
        description=(
            "Without NAME: list the registered encoders. With NAME: build it with random "
            "weights and print the input it expects, its output width and its options."
        ),
    )
    parser.add_argument("name", nargs="?", help="an encoder name, e.g. video_tiny")
    parser.add_argument(
        "--modality",
        choices=("video", "music"),
        # "audio" was this option's word for music before; scripts that use it still work
        type=lambda value: "music" if value == "audio" else value,
        help="list only this modality",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override for NAME (YAML value), e.g. --set num_frames=16; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, object]:
    import yaml

    from crossmodal.errors import CrossmodalError

    overrides: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CrossmodalError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise CrossmodalError(f"--set {key}: cannot parse {value!r}: {err}") from err
    return overrides


def run(args: argparse.Namespace) -> int:
    from crossmodal.encoders import get_entry, list_encoders

    if args.name is None:
        entries = [get_entry(n) for n in list_encoders(args.modality)]
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "name": e.name,
                            "modality": e.meta["modality"],
                            "description": e.meta["description"],
                        }
                        for e in entries
                    ],
                    indent=2,
                )
            )
            return 0
        for e in entries:
            print(f"{e.name:<20} {e.meta['modality']:<6} {e.meta['description']}")
        return 0
    return describe(args.name, parse_overrides(args.overrides), args.json)


def describe(name: str, overrides: dict[str, object], as_json: bool) -> int:
    from crossmodal.encoders import create_encoder, encoder_options, get_entry
    from crossmodal.errors import CrossmodalError

    entry = get_entry(name)
    try:
        encoder = create_encoder(name, **overrides)
    except (TypeError, ValueError) as err:
        raise CrossmodalError(f"cannot build {name} with {overrides}: {err}") from err
    takes_config = any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(entry.factory).parameters.values()
    )
    info = {
        "name": name,
        "modality": entry.meta["modality"],
        "description": entry.meta["description"],
        "input_shape": ["B", *encoder.input_shape],
        "layout": encoder.layout,
        "spec": encoder.spec.to_dict(),
        "output_dim": encoder.output_dim,
        "parameters": encoder.num_parameters(),
        "options": {k: (None if v is ... else v) for k, v in encoder_options(name).items()},
    }
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{name} ({info['modality']}): {info['description']}")
    print(f"  input   ({info['layout']}) = ({', '.join(map(str, info['input_shape']))})")
    print(f"  spec    {info['spec']}")
    print(f"  output  (B, {encoder.output_dim})")
    print(f"  params  {encoder.num_parameters():,}")
    options = ", ".join(f"{k}={v!r}" for k, v in info["options"].items())
    if takes_config:
        options += ", and the fields of its transformers config"
    print(f"  options {options}")
    return 0
