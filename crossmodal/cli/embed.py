"""`crossmodal embed`: export both modalities' embeddings of a manifest to a file."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="export video and music embeddings (npz or parquet)",
        description=(
            "Embed every clip of a manifest (or one split) with a trained model and write "
            "ids, tracks, labels and both embeddings to an .npz (numpy, no pickle) or "
            ".parquet (needs pyarrow) file, for notebooks and other tools."
        ),
    )
    parser.add_argument(
        "--checkpoint", required=True, help="run folder, model.pt or a .pt checkpoint"
    )
    parser.add_argument("--data", required=True, help="manifest (.jsonl) or folder of videos")
    parser.add_argument("--split", default="all", help="split to embed (default: all)")
    parser.add_argument("--out", required=True, help="output file, .npz or .parquet")
    parser.add_argument("--segments", type=int, default=1, help="windows per clip, averaged")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crossmodal.data import PairedClipDataset, read_manifest
    from crossmodal.errors import CrossmodalError
    from crossmodal.export import write_embeddings
    from crossmodal.inference import embed_dataset, load_trained_model
    from crossmodal.training.trainer import resolve_device

    out = Path(args.out)
    if out.suffix not in (".npz", ".parquet"):
        raise CrossmodalError(f"--out must end in .npz or .parquet, got {out.name}")
    device = resolve_device(args.device)
    model = load_trained_model(args.checkpoint, map_location=device)
    records = read_manifest(args.data)
    labels = sorted({r.label for r in records if r.label is not None})
    if args.split != "all":
        records = [r for r in records if r.split == args.split]
    if not records:
        raise CrossmodalError(f"split {args.split!r} of {args.data} has no clips")
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
    track_names = [dataset.track_ids[int(t)] for t in embedded.tracks]
    label_names = [labels[int(i)] if i >= 0 else "" for i in embedded.labels]
    write_embeddings(out, embedded, track_names, label_names)
    print(
        f"wrote {len(embedded.ids)} clips × 2 modalities × {embedded.video.shape[1]} dims to {out}"
    )
    return 0
