"""Checks and normalisation for vectors on their way into faiss.

faiss needs C-contiguous float32; numpy 2 silently turns ``float32 * np.float64`` into
float64, so every path into faiss goes through :func:`as_unit_rows`.
"""

from __future__ import annotations

import numpy as np

from crossmodal.retrieval.errors import InvalidVectorsError

# Rows shorter than this cannot be normalised meaningfully (and are surely a bug upstream).
MIN_NORM = 1e-12
_CHUNK_ROWS = 65536


def as_unit_rows(vectors: object, dim: int, *, what: str = "vectors") -> np.ndarray:
    """Validate ``vectors`` and return them L2-normalised as contiguous float32 (N, dim).

    A 1-D input of length ``dim`` is one row. Raises :class:`InvalidVectorsError` naming
    ``what`` and the first offending row for a wrong shape, NaN/inf values or a zero row.
    The input is never modified.
    """
    array = np.asarray(vectors)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise InvalidVectorsError(
            f"{what}: expected shape (N, {dim}) (or ({dim},) for one vector), got {np.shape(vectors)}"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidVectorsError(f"{what}: expected real numbers, got dtype {array.dtype}")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidVectorsError(
            f"{what}: row {bad} contains NaN or inf ({int((~finite).sum())} bad row(s) of {len(array)})"
        )
    rows = np.empty(array.shape, dtype=np.float32)
    # Normalise in float64 (no overflow for huge finite values), in chunks to bound memory.
    for lo in range(0, len(array), _CHUNK_ROWS):
        chunk = array[lo : lo + _CHUNK_ROWS].astype(np.float64)
        norms = np.linalg.norm(chunk, axis=1)
        if (norms < MIN_NORM).any():
            bad = lo + int(np.flatnonzero(norms < MIN_NORM)[0])
            raise InvalidVectorsError(f"{what}: row {bad} has zero length and cannot be normalised")
        rows[lo : lo + _CHUNK_ROWS] = chunk / norms[:, None]
    return rows


def as_ids(ids: object, *, what: str = "ids") -> np.ndarray:
    """Return ``ids`` as a contiguous int64 1-D array, rejecting non-integers and negatives."""
    array = np.asarray(ids)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what}: expected integers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.int64)
    if (array < 0).any():
        raise ValueError(f"{what}: ids must be >= 0 (faiss uses -1 for 'no result')")
    return array
