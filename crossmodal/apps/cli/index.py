"""`crossmodal index`: embed music and video libraries into a searchable index."""

from __future__ import annotations

import argparse

from crossmodal.apps.cli._args import batch_size, float_range, int_range
from crossmodal.retrieval.limits import HOP_FRACTION, MIN_HOP_SECONDS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="embed music and/or video libraries into an index folder",
        description=(
            "Cut every file into windows of the model's clip length, embed them, and store a "
            "faiss index per modality plus a SQLite catalog in --out. Running it again adds new "
            "files and re-embeds changed ones; --prune drops files no longer in the library. "
            "Each run that changes something publishes a new version atomically: readers keep "
            "working, and an interrupted run leaves the previous index intact. Exit code 1 when "
            "files failed in this run (listed); a file that failed before and has not changed "
            "is skipped with a warning, not retried, and does not make the exit code 1."
        ),
    )
    parser.add_argument(
        "--checkpoint", required=True, help="run folder, model.pt or a .pt checkpoint"
    )
    parser.add_argument(
        "--music",
        help=(
            "music library: a folder (searched recursively: audio files, and videos for their "
            "soundtracks) or a manifest (rows with 'audio', or a video whose soundtrack is "
            "the music)"
        ),
    )
    parser.add_argument(
        "--videos", help="video library: a folder (searched recursively) or a manifest"
    )
    parser.add_argument("--out", required=True, help="index folder (created)")
    parser.add_argument("--split", help="only this split of manifest libraries (e.g. test)")
    parser.add_argument(
        "--hop",
        type=float_range(MIN_HOP_SECONDS, why="windows closer than this only repeat each other"),
        help=f"seconds between window starts, >= {MIN_HOP_SECONDS} and at least 1/{HOP_FRACTION} "
        "of the model's window (default: half a window)",
    )
    parser.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "flat", "hnsw", "ivfpq"),
        help="faiss index type (auto: exact below 50k vectors, HNSW above)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="start from empty (e.g. after retraining)"
    )
    parser.add_argument(
        "--prune", action="store_true", help="drop catalogued files missing from the libraries"
    )
    parser.add_argument(
        "--tagger",
        default="msd",
        choices=("msd", "mtt", "none"),
        help=(
            "keep each track's tags (shipped musicnn tagger) for `recommend --tag` (default "
            "msd; about 36x real time on one CPU core, so 'none' indexes faster)"
        ),
    )
    parser.add_argument(
        "--batch-size", type=batch_size, default=32, help="windows embedded at a time"
    )
    parser.add_argument(
        "--workers",
        type=int_range(0, 64),
        default=0,
        help="decoding processes (default 0: decode in the embedding process)",
    )
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from crossmodal.errors import CrossmodalError
    from crossmodal.inference import load_trained_model
    from crossmodal.retrieval.index_params import IndexParams
    from crossmodal.retrieval.indexer import Indexer, describe_failures, library_files
    from crossmodal.training.trainer import resolve_device

    if not args.music and not args.videos:
        raise CrossmodalError("nothing to index: pass --music and/or --videos")
    device = resolve_device(args.device)
    model = load_trained_model(args.checkpoint, map_location=device)
    libraries = {}
    if args.music:
        libraries["music"] = library_files(args.music, "music", args.split)
    if args.videos:
        libraries["video"] = library_files(args.videos, "video", args.split)
    tagger = None
    if args.music and args.tagger != "none":
        from crossmodal.tagging import Tagger

        tagger = Tagger(args.tagger, device=device)
    indexer = Indexer(
        model,
        args.out,
        hop=args.hop,
        batch_size=args.batch_size,
        device=device,
        workers=args.workers,
        tagger=tagger,
    )
    report = indexer.index(
        libraries, rebuild=args.rebuild, prune=args.prune, params=IndexParams(kind=args.kind)
    )
    for modality in libraries:
        print(
            f"{modality}: {report.added[modality]} embedded, {report.unchanged[modality]} unchanged, "
            f"{report.removed[modality]} removed"
        )
    if report.published:
        print(f"index version {report.version} published in {args.out}")
    else:
        print(f"nothing changed: index version {report.version} in {args.out} is current")
    log = logging.getLogger(__name__)
    if report.known_bad:
        # Already reported by the run that failed them; unchanged since, so not retried and
        # not counted as failures of this run (exit code 0 if nothing new failed).
        log.warning(
            "%d file(s) skipped: they failed in an earlier run and have not changed since "
            "(change or replace a file to retry it, or use --rebuild):\n%s",
            len(report.known_bad),
            describe_failures(report.known_bad),
        )
    if report.failed:
        log.warning(
            "%d file(s) could not be indexed:\n%s",
            len(report.failed),
            describe_failures(report.failed),
        )
        return 1
    return 0
