"""`crossmodal evaluate`: retrieval metrics of a trained model in both directions."""

from __future__ import annotations

import argparse
from pathlib import Path

from crossmodal.apps.cli._args import batch_size, positive_int


def add_embedding_options(parser: argparse.ArgumentParser, default_split: str) -> None:
    """Options shared by `evaluate` and `embed`: model, data, windows, device, cache."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="RUN_DIR|FILE",
        help="run folder (its model.pt), a model.pt, or a best.pt/last.pt checkpoint",
    )
    parser.add_argument(
        "--data", required=True, metavar="MANIFEST|DIR", help="manifest (.jsonl) or folder"
    )
    parser.add_argument(
        "--split",
        default=default_split,
        help=f"split to use ('all': every clip; default: {default_split})",
    )
    parser.add_argument(
        "--segments",
        type=int,
        default=1,
        help="windows per clip, evenly spaced, their embeddings averaged and re-normalised "
        "(multi-segment aggregation; default 1: the centre window)",
    )
    parser.add_argument(
        "--batch-size", type=batch_size, default=64, help="clips embedded at a time"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="decoded-window cache (default: the training default, ~/.cache/crossmodal/features)",
    )
    cache.add_argument("--no-cache", action="store_true", help="decode every clip afresh")


def run_folder(checkpoint: str) -> Path:
    """The run folder of ``--checkpoint`` (itself, or the folder holding the file): where
    a carved val split is stored."""
    path = Path(checkpoint)
    return path if path.is_dir() else path.parent


def embed_from_args(args: argparse.Namespace) -> tuple:
    """(model, dataset, embedded clips) for the shared options."""
    from crossmodal.errors import CrossmodalError
    from crossmodal.fileio import user_cache_dir
    from crossmodal.inference import embed_dataset, load_trained_model, manifest_dataset
    from crossmodal.training.runtime import resolve_device

    if args.batch_size < 1:
        raise CrossmodalError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    model = load_trained_model(args.checkpoint, map_location=device)
    cache = None if args.no_cache else (args.cache_dir or user_cache_dir("features"))
    dataset = manifest_dataset(
        model, args.data, args.split, args.segments, cache, run_dir=run_folder(args.checkpoint)
    )
    embedded = embed_dataset(model, dataset, batch_size=args.batch_size, device=device)
    return model, dataset, embedded


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure retrieval in both directions on a split",
        description=(
            "Embed every clip of a split with both towers, then rank: video→music (each "
            "video against all music) and music→video. Instance level: every clip sharing "
            "the query's track_id is relevant (R@1/5/10, MedR, MeanR, mAP). Category level "
            "when clips have labels: P@1, MAP@R, NMI (k-means on both modalities). Ties "
            "count pessimistically. Queries are scored in chunks, never as an n×n matrix."
        ),
        epilog=(
            'JSON: {"video_to_music": {"R@1", "R@5", "R@10", "MedR", "MeanR", "mAP"}, '
            '"music_to_video": {…}, "gallery_size": N, "chance": {"R@1", "R@10"}, '
            '"category": {…} (with labels), "split", "segments"}'
        ),
    )
    add_embedding_options(parser, default_split="test")
    parser.add_argument(
        "--chunk-size", type=positive_int, default=256, help="queries scored at a time (memory)"
    )
    parser.add_argument(
        "--baseline",
        choices=["sync"],
        help="also score a non-learned baseline on the same clips, in the same table: "
        "'sync' ranks by the cross-correlation of the music's onset strength with the "
        "frames' motion energy",
    )
    parser.add_argument(
        "--blend",
        type=float,
        metavar="ALPHA",
        help="score a model with a vibe (mood) part at this blend, 0 = sync only … 1 = vibe "
        "only (default: the model's own; ignored, with a note, by a one-part model)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from crossmodal.errors import CrossmodalError
    from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings, format_report

    if args.chunk_size < 1:
        raise CrossmodalError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if args.blend is not None and not 0.0 <= args.blend <= 1.0:
        raise CrossmodalError(f"--blend must be between 0 and 1, got {args.blend}")
    model, dataset, embedded = embed_from_args(args)
    layout = model.layout
    blend = args.blend
    if blend is not None and not layout.has_vibe:
        print(f"note: this model has no vibe (mood) part: --blend {blend:g} ignored")
        blend = None
    report = evaluate_embeddings(
        embedded.video,
        embedded.music,
        embedded.tracks,
        embedded.labels,
        chunk_size=args.chunk_size,
        scorer=lambda q, g: layout.scores(q, g, blend),
    )
    if layout.has_vibe:
        report["blend"] = layout.blend if blend is None else blend
        # At α 0 the score is the plain sync similarity: no gate applies.
        report["sync_gate"] = layout.gate if report["blend"] > 0 else None
    report["split"] = args.split
    report["segments"] = args.segments
    baselines = {}
    if args.baseline == "sync":
        from crossmodal.evaluation.baseline import sync_baseline

        baselines["sync"] = sync_baseline(dataset.records, chunk_size=args.chunk_size)
        report["baselines"] = baselines
    print(json.dumps(report, indent=2) if args.json else format_report(report, baselines))
    return 0
