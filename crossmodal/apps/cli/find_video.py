"""`crossmodal find-video`: videos for a piece of audio."""

from __future__ import annotations

import argparse

from crossmodal.apps.cli._query import add_query_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "find-video",
        help="find videos in an index that fit audio files",
        description=(
            "For each audio file (or a video's soundtrack), list the k videos of the index's "
            "video library that fit it best, with the cosine score and the best-matching window "
            "of each video. A file that cannot be decoded gets its own error; the others are "
            "still answered (exit code 1 if any failed). A file shorter than the model's window "
            "but at least 0.5 s long is padded to one window (video: last frame held; music: "
            "silence) and the output says so."
        ),
    )
    add_query_arguments(parser, "audio file(s), or videos whose soundtrack is the query")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossmodal.apps.cli._query import run_queries

    return run_queries(args, "video")
