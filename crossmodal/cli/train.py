"""`crossmodal train`: learn the shared video–music space from a manifest."""

from __future__ import annotations

import argparse

EPILOG = """\
Any config field can be overridden after the options, as --key value with a dotted
path or an unambiguous field name, e.g.:
  crossmodal train --data corpus/manifest.jsonl --out runs/a --epochs 30 --lr 1e-3 \\
      --model.embed_dim 256 --data.sampler pk
Loss terms are a list: --losses '[{name: circle, weight: 1.0}, {name: info_nce}]'.
Print every field with its default: crossmodal train --print-config.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the two-tower model on a manifest",
        description=(
            "Train the video and music towers into one embedding space (default objective: "
            "symmetric InfoNCE + symmetric N-pair). Writes checkpoints, a metrics log and "
            "curves to --out."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", help="manifest (.jsonl) or folder of videos with soundtracks")
    parser.add_argument("--out", help="run folder (created)")
    parser.add_argument("--config", help="YAML config file (fields as in --print-config)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resulting config as YAML and exit"
    )
    parser.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    import yaml

    from crossmodal.config import load_config, to_dict
    from crossmodal.errors import CrossmodalError
    from crossmodal.training.config import TrainConfig

    overrides = list(args.config_overrides)
    if args.data:
        overrides += ["--data.manifest", args.data]
    cfg = load_config(TrainConfig, args.config, overrides)
    if args.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    if not args.out:
        raise CrossmodalError("--out RUN_DIR is required")
    from crossmodal.training.trainer import train

    result = train(cfg, args.out, resume=args.resume)
    minutes = result.train_seconds / 60
    print(
        f"trained {result.epochs_done} epochs ({result.steps} steps) in {minutes:.1f} min"
        f"{' (stopped by the time budget)' if result.stopped_early else ''}; run folder: {args.out}"
    )
    if result.val is not None:
        from crossmodal.evaluation.crossmodal_eval import format_report

        print(format_report(result.val))
    return 0
