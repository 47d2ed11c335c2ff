"""How a vector index is built and searched: kind, size policy and per-kind knobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "ivfpq")
KIND_CHOICES: tuple[str, ...] = ("auto", *INDEX_KINDS)


@dataclass(frozen=True)
class IndexParams:
    """Index kind policy and parameters (defaults chosen with ``bench/index.py``).

    kind: ``"auto"`` (default) picks ``"flat"`` (exact, brute-force inner product) below
        ``flat_max`` vectors and ``large_kind`` from there on; or force one of
        ``"flat"``, ``"hnsw"``, ``"ivfpq"``.
    flat_max: 10_000_000 — exact windows plus the item stage (from ``item_stage_min``)
        measured best at 300k and 1M windows (1M: item recall@10 0.98, 1 ms per-item query,
        2 min build, against 755 s for an HNSW window graph that needs efSearch ≥ 1024 to
        keep item recall; ``bench/results/index.md``). Raw window searches scan every
        vector (~70 ms at 1M).
    large_kind: ``"hnsw"`` — past ``flat_max``; ``"ivfpq"`` trades recall for ~8-16× less
        memory.
    hnsw_m: 32 graph neighbours per node; hnsw_ef_construction: 40 (build beam);
        hnsw_ef_search: 64 (query beam, raised to k when k is larger).
    ivf_nlist: inverted lists; ``None`` → power of two nearest √n in [16, 65536],
        bounded so that every list gets ``min_train_per_centroid`` training vectors.
    pq_m: sub-quantizers (bytes per vector at 8 bits); ``None`` → largest divisor of
        the dimension that is ≤ dim/8 (32 for D=256). pq_nbits: 8.
    ivf_nprobe: 16 lists visited per query.
    train_size: vectors sampled to train IVF-PQ; ``None`` → 64 × max(nlist, 2^nbits).
    min_train_per_centroid: 39 — faiss's own warning threshold for k-means; below it
        the training is refused with :class:`TooFewVectorsError`.
    tombstone_ratio: 0.1 — HNSW cannot delete; removed ids are filtered at query time
        and the graph is rebuilt once this fraction of it is dead.
    seed: random seed of the training sample and k-means.
    recall_target: 0.95 — at build time ``hnsw_ef_search`` / ``ivf_nprobe`` are raised
        until recall@``recall_k`` (of items when the catalog is known, else of windows),
        measured on ``recall_sample`` stored vectors against exact search, reaches it
        (see :mod:`crossmodal.retrieval.recall_tuning`); ``None`` keeps the values given.
    item_stage_min: 50_000 — from this many windows (flat or HNSW window index) per-item
        search goes through an item-level first stage (see
        :mod:`crossmodal.retrieval.item_index`), tuned for the same target; ``None``: never.
    measured_recall: what that measurement found for the chosen values (written by the
        tuning, ``None`` before it ran); 1.0 for exact (flat) indexes.
    """

    kind: str = "auto"
    flat_max: int = 10_000_000
    large_kind: str = "hnsw"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 40
    hnsw_ef_search: int = 64
    ivf_nlist: int | None = None
    pq_m: int | None = None
    pq_nbits: int = 8
    ivf_nprobe: int = 16
    train_size: int | None = None
    min_train_per_centroid: int = 39
    tombstone_ratio: float = 0.1
    seed: int = 1234
    recall_target: float | None = 0.95
    recall_k: int = 10
    recall_sample: int = 256
    item_stage_min: int | None = 50_000
    measured_recall: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KIND_CHOICES:
            raise ValueError(f"index kind must be one of {KIND_CHOICES}, got {self.kind!r}")
        if self.large_kind not in ("hnsw", "ivfpq"):
            raise ValueError(f"large_kind must be 'hnsw' or 'ivfpq', got {self.large_kind!r}")
        for name in ("flat_max", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.ivf_nprobe < 1 or not 1 <= self.pq_nbits <= 16:
            raise ValueError("ivf_nprobe must be >= 1 and pq_nbits in [1, 16]")
        if self.recall_target is not None and not 0.0 < self.recall_target <= 1.0:
            raise ValueError(f"recall_target must be in (0, 1], got {self.recall_target}")
        if self.recall_k < 1 or self.recall_sample < 1:
            raise ValueError("recall_k and recall_sample must be >= 1")
        if not 0.0 < self.tombstone_ratio <= 1.0:
            raise ValueError(f"tombstone_ratio must be in (0, 1], got {self.tombstone_ratio}")

    def kind_for(self, n: int) -> str:
        """The concrete kind for ``n`` vectors under this policy (no training check)."""
        if self.kind != "auto":
            return self.kind
        return "flat" if n < self.flat_max else self.large_kind

    def nlist_for(self, n: int) -> int:
        """Number of IVF lists for ``n`` vectors (see the class docstring)."""
        if self.ivf_nlist is not None:
            return self.ivf_nlist
        nlist = 2 ** round(math.log2(max(math.sqrt(max(n, 1)), 1.0)))
        cap = max(16, n // self.min_train_per_centroid)
        return int(min(max(16, min(nlist, cap)), 65536))

    def pq_m_for(self, dim: int) -> int:
        """Number of PQ sub-quantizers for ``dim`` (must divide ``dim``)."""
        if self.pq_m is not None:
            if dim % self.pq_m:
                raise ValueError(f"pq_m={self.pq_m} must divide the dimension {dim}")
            return self.pq_m
        target = max(1, dim // 8)
        return max(m for m in range(1, target + 1) if dim % m == 0)

    def min_vectors_for_ivfpq(self, n: int) -> int:
        """Fewest vectors that can train IVF-PQ with the lists chosen for ``n`` vectors."""
        return self.min_train_per_centroid * max(self.nlist_for(n), 2**self.pq_nbits)

    def train_size_for(self, n: int) -> int:
        """How many of ``n`` vectors to sample for IVF-PQ training."""
        if self.train_size is not None:
            return min(n, self.train_size)
        return min(n, 64 * max(self.nlist_for(n), 2**self.pq_nbits))

    def with_kind(self, kind: str) -> IndexParams:
        """A copy with another ``kind``."""
        return replace(self, kind=kind)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexParams:
        """Inverse of :meth:`to_dict`; unknown keys (from a newer writer) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
