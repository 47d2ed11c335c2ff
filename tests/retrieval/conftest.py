"""Shared data for the retrieval tests: clustered unit vectors and brute-force references."""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np
import pytest

from crossmodal.retrieval import ItemMeta

# One OpenMP thread: the suite's indexes are tiny, and on a shared 2-core machine faiss's
# spinning threads make small k-means/PQ trainings ~8x slower, not faster.
faiss.omp_set_num_threads(1)


def clustered_vectors(
    n: int, dim: int, *, clusters: int = 20, spread: float = 1.0, seed: int = 0
) -> np.ndarray:
    """``n`` unit vectors from a mixture of ``clusters`` Gaussians around random unit centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = centres[rng.integers(clusters, size=n)] + spread * rng.standard_normal(
        (n, dim)
    ) / np.sqrt(dim)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def brute_force(
    db: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by cosine in float64: (scores, ids), each (Q, min(k, N))."""
    db64 = db.astype(np.float64)
    db64 /= np.linalg.norm(db64, axis=1, keepdims=True)
    q64 = np.atleast_2d(queries).astype(np.float64)
    q64 /= np.linalg.norm(q64, axis=1, keepdims=True)
    sims = q64 @ db64.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), ids[order]


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-k ids that were found."""
    hits = [
        len(set(f[f >= 0].tolist()) & set(e.tolist())) / len(e)
        for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(hits))


@pytest.fixture
def clustered() -> Callable[..., np.ndarray]:
    return clustered_vectors


@pytest.fixture
def exact_search() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return brute_force


@pytest.fixture
def recall() -> Callable[[np.ndarray, np.ndarray], float]:
    return recall_at_k


@pytest.fixture
def meta() -> Callable[..., ItemMeta]:
    def make(
        size: int = 1000, mtime: float = 1.5e9, checksum: str = "sha256:00", **kw: object
    ) -> ItemMeta:
        return ItemMeta(size=size, mtime=mtime, checksum=checksum, **kw)  # type: ignore[arg-type]

    return make
