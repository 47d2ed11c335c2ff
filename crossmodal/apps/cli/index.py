"""`crossmodal index`: embed music and video libraries into a searchable index."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from crossmodal.apps.cli._args import batch_size, float_range, int_range
from crossmodal.retrieval.limits import HOP_FRACTION, MIN_HOP_SECONDS

if TYPE_CHECKING:
    from crossmodal.retrieval.indexer import IndexReport


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
        help=(
            "faiss index type (auto: exact windows with an item-level first stage up to 10M "
            "windows, HNSW above)"
        ),
    )
    parser.add_argument(
        "--recall",
        type=float,
        default=0.95,
        help="recall@10 of items that approximate indexes must reach, measured at build time "
        "against exact search on a sample of the stored vectors; efSearch/nprobe are raised "
        "until it is met and stored with the version (default 0.95)",
    )
    parser.add_argument(
        "--store",
        default="faiss",
        help="vector backend readers search: 'faiss' (default, files in --out) or "
        "'milvus:PATH_OR_URI' (a milvus-lite file or a Milvus server URI; the catalog stays "
        "in --out, and each published version is mirrored into Milvus)",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="embed only shard I of N (every N-th file) into --out/shards, without publishing; "
        "run one per process or machine, then --merge-shards N",
    )
    parser.add_argument(
        "--merge-shards",
        type=int,
        metavar="N",
        help="publish the N shard files in --out/shards as one index version",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="start from empty (e.g. after retraining)"
    )
    parser.add_argument(
        "--prune", action="store_true", help="drop catalogued files missing from the libraries"
    )
    parser.add_argument(
        "--tagger",
        default="none",
        choices=("msd", "mtt", "none"),
        help=(
            "keep each music track's 50 tags (shipped musicnn tagger, offline) for "
            "`recommend --tag` and the tags `recommend` prints: msd (last.fm tags, moods among "
            "them) or mtt; default none, because tagging runs at about 36x real time on one "
            "core while indexing alone runs at 230-300x"
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
    from crossmodal.errors import CrossmodalError
    from crossmodal.inference import load_trained_model
    from crossmodal.retrieval.index_params import IndexParams
    from crossmodal.retrieval.indexer import Indexer, library_files
    from crossmodal.retrieval.milvus_store import parse_store, publish_to_milvus
    from crossmodal.retrieval.recall_tuning import describe_search_params
    from crossmodal.retrieval.shards import embed_shard, merge_shards, parse_shard
    from crossmodal.training.trainer import resolve_device

    merging = vars(args).get("merge_shards") is not None
    if not merging and not args.music and not args.videos:
        raise CrossmodalError("nothing to index: pass --music and/or --videos")
    milvus_uri = parse_store(args.store)
    params = IndexParams(kind=args.kind, recall_target=args.recall)
    if merging:
        if args.prune:
            raise CrossmodalError("--prune applies to a full run, not to --merge-shards")
        report = merge_shards(args.out, args.merge_shards, rebuild=args.rebuild, params=params)
        libraries = {m: None for m in ("music", "video") if report.added[m] + report.unchanged[m]}
    else:
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
        if args.shard is not None:
            shard, count = parse_shard(args.shard)
            stem, report = embed_shard(indexer, libraries, shard, count)
            for modality in libraries:
                print(f"{modality}: {report.added[modality]} embedded into {stem}.npz")
            print(f"shard {shard}/{count} written; publish with --merge-shards {count}")
            return _failed(report)
        report = indexer.index(libraries, rebuild=args.rebuild, prune=args.prune, params=params)
    for modality in libraries:
        print(
            f"{modality}: {report.added[modality]} embedded, {report.unchanged[modality]} unchanged, "
            f"{report.removed[modality]} removed"
        )
    if report.published:
        print(f"index version {report.version} published in {args.out}")
    else:
        print(f"nothing changed: index version {report.version} in {args.out} is current")
    if milvus_uri is not None:
        publish_to_milvus(args.out, milvus_uri)
        print(f"version {report.version} mirrored to Milvus at {milvus_uri}")
    for line in describe_search_params(args.out):
        print(line)
    return _failed(report)


def _failed(report: IndexReport) -> int:
    """Log the files that could not be indexed; the exit status (1 when any failed in
    this run; files that failed before and have not changed are listed, not counted)."""
    import logging

    from crossmodal.retrieval.indexer import describe_failures

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
