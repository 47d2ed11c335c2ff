"""`crossmodal embed`: export both modalities' embeddings of a manifest to a file."""

from __future__ import annotations

import argparse

from crossmodal.apps.cli.evaluate import add_embedding_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="export video and music embeddings (npz or parquet)",
        description=(
            "Embed every clip of a manifest (or one split) with a trained model and write "
            "ids, track ids, labels and both (N, D) float32 L2-normalised embeddings to an "
            ".npz (numpy; read with np.load(path, allow_pickle=False)) or a .parquet file "
            "(needs pyarrow), for notebooks and other tools."
        ),
    )
    add_embedding_options(parser, default_split="all")
    parser.add_argument("--out", required=True, help="output file, .npz or .parquet")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crossmodal.apps.cli.evaluate import embed_from_args
    from crossmodal.export import check_format, write_embeddings

    out = Path(args.out)
    check_format(out)  # a missing writer fails before minutes of embedding
    _, dataset, embedded = embed_from_args(args)
    track_names = [dataset.track_ids[int(t)] for t in embedded.tracks]
    label_names = [dataset.labels[int(i)] if i >= 0 else "" for i in embedded.labels]
    write_embeddings(out, embedded, track_names, label_names)
    print(
        f"wrote {len(embedded.ids)} clips × 2 modalities × {embedded.video.shape[1]} dims to {out}"
    )
    return 0
