"""Embedding files for notebooks and other tools: .npz (numpy, no pickle) or .parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossmodal.errors import MissingDependencyError
from crossmodal.fileio import atomic_path
from crossmodal.inference import EmbeddedClips


def write_embeddings(
    path: str | Path, embedded: EmbeddedClips, track_ids: list[str], labels: list[str]
) -> Path:
    """Write ids, track ids, labels ('' when none) and both (N, D) float32 embeddings.

    .npz arrays: ``id``, ``track_id``, ``label`` (unicode), ``video``, ``music``; read with
    ``np.load(path, allow_pickle=False)``. .parquet columns: the same, the embeddings as
    fixed-size lists.
    """
    path = Path(path)
    video = np.ascontiguousarray(embedded.video.numpy(), dtype=np.float32)
    music = np.ascontiguousarray(embedded.music.numpy(), dtype=np.float32)
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as err:
            raise MissingDependencyError("pyarrow", purpose="parquet export") from err
        dim = video.shape[1]
        table = pa.table(
            {
                "id": embedded.ids,
                "track_id": track_ids,
                "label": labels,
                "video": pa.FixedSizeListArray.from_arrays(pa.array(video.reshape(-1)), dim),
                "music": pa.FixedSizeListArray.from_arrays(pa.array(music.reshape(-1)), dim),
            }
        )
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            id=np.array(embedded.ids, dtype=str),
            track_id=np.array(track_ids, dtype=str),
            label=np.array(labels, dtype=str),
            video=video,
            music=music,
        )
    return path
