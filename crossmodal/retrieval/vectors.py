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
    The input is never modified. Rows whose squared norm overflows are rescaled first;
    large inputs are processed in chunks of 65536 rows to bound temporary memory.
    """
    array = np.asarray(vectors)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dim:
        raise InvalidVectorsError(
            f"{what}: expected shape (N, {dim}) (or ({dim},) for one vector), got {np.shape(vectors)}"
        )
    if array.dtype.kind not in "fiu":
        raise InvalidVectorsError(f"{what}: expected real numbers, got dtype {array.dtype}")
    if len(array) <= _CHUNK_ROWS:
        return _unit_chunk(array, 0, what)
    rows = np.empty(array.shape, dtype=np.float32)
    for lo in range(0, len(array), _CHUNK_ROWS):
        rows[lo : lo + _CHUNK_ROWS] = _unit_chunk(array[lo : lo + _CHUNK_ROWS], lo, what)
    return rows


def _unit_chunk(array: np.ndarray, offset: int, what: str) -> np.ndarray:
    # float32 input is normalised in float32 (no cast round trip: this runs on every query);
    # anything else in float64, so that values beyond float32's range are not turned into inf.
    rows = array.astype(np.float32 if array.dtype == np.float32 else np.float64)
    squares = np.einsum("ij,ij->i", rows, rows)
    # One test on the squared norms catches NaN/inf values (their norm is not finite),
    # zero rows and overflowing squares; the precise diagnosis runs only then.
    if not (np.isfinite(squares).all() and (squares >= MIN_NORM * MIN_NORM).all()):
        squares = _diagnose(rows, squares, offset, what)
    rows /= np.sqrt(squares)[:, None]
    return rows if rows.dtype == np.float32 else rows.astype(np.float32)


def _diagnose(rows: np.ndarray, squares: np.ndarray, offset: int, what: str) -> np.ndarray:
    """Raise for NaN/inf or zero rows; rescale rows whose squares merely overflowed."""
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidVectorsError(
            f"{what}: row {offset + bad} contains NaN or inf "
            f"({int((~finite).sum())} bad row(s) in rows {offset}..{offset + len(rows) - 1})"
        )
    huge = ~np.isfinite(squares)
    if huge.any():  # finite values whose squares overflow: scale those rows down first
        rows[huge] /= np.abs(rows[huge]).max(axis=1, keepdims=True)
        squares = np.einsum("ij,ij->i", rows, rows)
    if (squares < MIN_NORM * MIN_NORM).any():
        bad = int(np.flatnonzero(squares < MIN_NORM * MIN_NORM)[0])
        raise InvalidVectorsError(
            f"{what}: row {offset + bad} has zero length and cannot be normalised"
        )
    return squares


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
