"""Embedding files for notebooks and other tools: .npz (numpy, no pickle) or .parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.errors import CrossmodalError, MissingDependencyError
from crossmodal.fileio import atomic_path
from crossmodal.inference import EmbeddedClips

FORMATS = (".npz", ".parquet")


def check_format(path: str | Path) -> None:
    """Raise unless ``path``'s suffix is a supported format whose writer is installed
    (:class:`MissingDependencyError` for .parquet without pyarrow)."""
    suffix = Path(path).suffix
    if suffix not in FORMATS:
        raise CrossmodalError(f"unsupported embedding file {Path(path).name}: use .npz or .parquet")
    if suffix == ".parquet":
        _pyarrow()


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise MissingDependencyError("pyarrow", purpose="parquet export (or use .npz)") from err
    return pa, pq


def write_embeddings(
    path: str | Path, embedded: EmbeddedClips, track_ids: list[str], labels: list[str]
) -> Path:
    """Write ids, track ids, labels ('' when none) and both (N, D) float32 embeddings,
    atomically.

    .npz arrays: ``id``, ``track_id``, ``label`` (unicode), ``video``, ``music``; read with
    ``np.load(path, allow_pickle=False)``. .parquet columns: the same, the embeddings as
    fixed-size lists of float32.
    """
    path = Path(path)
    check_format(path)
    n = len(embedded.ids)
    if not len(track_ids) == len(labels) == n == embedded.video.shape[0]:
        raise ValueError("ids, track ids, labels and embeddings must have one row per clip")
    video = np.ascontiguousarray(embedded.video.numpy(), dtype=np.float32)
    music = np.ascontiguousarray(embedded.music.numpy(), dtype=np.float32)
    if path.suffix == ".parquet":
        pa, pq = _pyarrow()
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
