"""`crossmodal evaluate`: retrieval metrics of a trained model in both directions."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure retrieval in both directions on a split",
        description=(
            "Embed every clip of a split with both towers, then rank: video→music (each "
            "video against all music) and music→video. Instance level: every clip sharing "
            "the query's track_id is relevant (R@1/5/10, MedR, MeanR, mAP). Category level "
            "when clips have labels: P@1, MAP@R, NMI. Ties count pessimistically."
        ),
    )
    parser.add_argument(
        "--checkpoint", required=True, help="run folder, model.pt or a .pt checkpoint"
    )
    parser.add_argument("--data", required=True, help="manifest (.jsonl) or folder of videos")
    parser.add_argument(
        "--split", default="test", help="split to evaluate (default: test; 'all' for every clip)"
    )
    parser.add_argument(
        "--segments",
        type=int,
        default=1,
        help="windows per clip, averaged into one embedding (multi-segment aggregation; default 1: the centre window)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=256, help="queries scored at a time")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from crossmodal.data import PairedClipDataset, read_manifest
    from crossmodal.errors import CrossmodalError
    from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings, format_report
    from crossmodal.inference import embed_dataset, load_trained_model
    from crossmodal.training.builders import check_media_exist
    from crossmodal.training.trainer import resolve_device

    device = resolve_device(args.device)
    model = load_trained_model(args.checkpoint, map_location=device)
    records = read_manifest(args.data)
    labels = sorted({r.label for r in records if r.label is not None})
    if args.split != "all":
        records = [r for r in records if r.split == args.split]
    if not records:
        raise CrossmodalError(f"split {args.split!r} of {args.data} has no clips")
    check_media_exist(records)
    dataset = PairedClipDataset(
        records,
        model.video_spec,
        model.audio_spec,
        train=False,
        labels=labels,
        eval_windows=args.segments if args.segments > 1 else "centre",
        on_error="raise",
    )
    embedded = embed_dataset(model, dataset, batch_size=args.batch_size, device=device)
    report = evaluate_embeddings(
        embedded.video, embedded.music, embedded.tracks, embedded.labels, chunk_size=args.chunk_size
    )
    report["split"] = args.split
    report["segments"] = args.segments
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
