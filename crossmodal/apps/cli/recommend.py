"""`crossmodal recommend`: music for a video."""

from __future__ import annotations

import argparse

from crossmodal.apps.cli._query import add_query_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="recommend music from an index for video files",
        description=(
            "For each video, list the k tracks of the index's music library that fit it best, "
            "with the cosine score and the best-matching window of each track. A video that "
            "cannot be decoded gets its own error; the others are still answered (exit code 1 "
            "if any failed). A file shorter than the model's window but at least 0.5 s long is "
            "padded to one window (video: last frame held; music: silence) and the output "
            "says so. Tracks of an index built with a tagger show their top tags; --tag "
            "re-ranks them towards a tag."
        ),
    )
    add_query_arguments(parser, "video file(s) to find music for")
    parser.add_argument(
        "--tag",
        help="favour tracks with this tag (e.g. happy, chill, sad; index built with a tagger)",
    )
    parser.add_argument(
        "--tag-weight",
        type=float,
        default=1.0,
        help="rank by cosine + WEIGHT × p(tag) (default 1.0)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossmodal.apps.cli._query import run_queries

    return run_queries(args, "music")
