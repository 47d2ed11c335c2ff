"""`crossmodal tag`: the top tags of music files, from the shipped musicnn taggers."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tag",
        help="print the top tags (moods, genres, instruments) of music files",
        description=(
            "Tag music files (or videos' soundtracks) with a pretrained musicnn tagger that "
            "ships with crossmodal and runs offline: each file is cut into 3-second "
            "windows whose tag probabilities are averaged. 'msd': 50 last.fm tags (genres, "
            "decades, moods such as happy, sad, chill, Mellow, party); 'mtt': 50 "
            "MagnaTagATune tags (instruments, slow/fast, soft/loud, ...)."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="music or video files")
    parser.add_argument("--model", choices=("msd", "mtt"), default="msd", help="tagger (msd)")
    parser.add_argument("--top", type=int, default=5, metavar="N", help="tags per file (5)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON list (errors as entries too)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossmodal.errors import CrossmodalError
    from crossmodal.tagging import Tagger

    if args.top < 1:
        raise CrossmodalError(f"--top must be at least 1, got {args.top}")
    tagger = Tagger(args.model)
    results: list[dict[str, object]] = []
    failed = 0
    for path in args.files:
        try:
            tags = tagger.tag_file(path)
        except CrossmodalError as err:
            failed += 1
            log.error("%s", err)
            results.append({"file": path, "error": str(err)})
            continue
        top = tags.top(args.top)
        results.append(
            {
                "file": path,
                "model": args.model,
                "windows": tags.num_windows,
                "tags": [{"tag": name, "probability": round(p, 4)} for name, p in top],
            }
        )
        if not args.json:
            print(f"{path}: " + ", ".join(f"{name} {p:.2f}" for name, p in top))
    if args.json:
        print(json.dumps(results, indent=2))
    return 2 if failed else 0
