"""`crossmodal dub`: the video back with the recommended music on it."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dub",
        help="write a video with the music an index recommends for it",
        description=(
            "Find the music that fits VIDEO in the index, then write OUT (mp4, H.264/AAC, "
            "plays in browsers) with that track mixed in from its best-matching window "
            "(moved to the nearest beat), "
            "trimmed to the video's length, with short fades. The video's own sound is "
            "dropped unless --keep-original gives it a gain."
        ),
    )
    parser.add_argument("video", metavar="VIDEO", help="the video to put music on")
    parser.add_argument("--index", required=True, help="index folder written by `crossmodal index`")
    parser.add_argument("-o", "--out", required=True, metavar="OUT.mp4", help="file to write")
    parser.add_argument(
        "--rank", type=int, default=1, help="use the track ranked N for the video (default 1)"
    )
    parser.add_argument(
        "--keep-original",
        type=float,
        default=0.0,
        metavar="GAIN",
        help="gain of the video's own sound under the music, 0 to 1 (default 0: music only)",
    )
    parser.add_argument(
        "--fade", type=float, default=0.5, help="fade in/out length in seconds (default 0.5)"
    )
    parser.add_argument(
        "--no-beat-snap",
        action="store_true",
        help="start the track exactly at its matched window, not at the nearest beat",
    )
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossmodal.errors import CrossmodalError
    from crossmodal.retrieval.dub import dub_recommended
    from crossmodal.retrieval.recommender import Recommender
    from crossmodal.training.trainer import resolve_device

    if not args.out.lower().endswith((".mp4", ".m4v")):
        raise CrossmodalError(f"{args.out}: the output is an mp4 file; name it OUT.mp4")
    recommender = Recommender.load(args.index, device=resolve_device(args.device))
    try:
        match, result = dub_recommended(
            recommender,
            args.video,
            args.out,
            rank=args.rank,
            keep_original=args.keep_original,
            fade=args.fade,
            beat_snap=not args.no_beat_snap,
        )
    finally:
        recommender.close()
    label = f" [{match.label}]" if match.label else ""
    print(
        f"{result.path}: {match.path}{label} (rank {match.rank}, score {match.score:.3f}) "
        f"from {result.music_start:.1f} s, {result.duration:.1f} s long"
    )
    return 0
