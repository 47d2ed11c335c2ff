"""A faiss index of unit vectors under stable int64 ids: flat (exact), HNSW or IVF-PQ.

Scores are inner products of L2-normalised float32 vectors, i.e. cosine similarities in
[-1, 1]; every vector (stored or query) is validated and normalised on the way in.
Ids are chosen by the caller (the catalog assigns them) and never reused.

Removal: flat and IVF-PQ delete for real. faiss's HNSW graph cannot delete, so removed
ids become *tombstones*, filtered out during the graph search with an id selector (the
k results are all live); :meth:`VectorIndex.needs_compaction` tells when enough of the
graph is dead that :meth:`VectorIndex.compacted` should rebuild it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.fileio import atomic_write, atomic_write_text
from crossmodal.retrieval.errors import StoreCorruptError, StoreError, TooFewVectorsError
from crossmodal.retrieval.index_params import INDEX_KINDS, IndexParams
from crossmodal.retrieval.vectors import as_ids, as_unit_rows

log = logging.getLogger(__name__)

# Version of the on-disk layout of one index (``<stem>.faiss`` + ``<stem>.index.json``).
INDEX_FORMAT = 1
# Stored vectors are unit rows in float32; a norm further than this from 1 means damage.
UNIT_NORM_TOLERANCE = 1e-3
_NORM_CHUNK = 65536
# Below this many free bytes, a failed write is reported as a full disk.
_NEARLY_FULL = 64 << 20


def faiss_reason(err: BaseException) -> str:
    """The useful part of a faiss exception (its text spans several lines of C++ context)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error") and ":" in line:
            return line.rsplit(":", 1)[-1].strip() or line
    return lines[-1] if lines else type(err).__name__


def write_failure(path: Path, err: BaseException) -> OSError:
    """An ``OSError`` (ENOSPC when the disk is nearly full, else EIO) for a failed write."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < _NEARLY_FULL:
        return OSError(errno.ENOSPC, f"no space left on device ({free} bytes free)", str(path))
    return OSError(errno.EIO, f"write failed ({faiss_reason(err)})", str(path))


def _faiss() -> Any:
    # Imported lazily so that `crossmodal --help` does not load faiss.
    import faiss

    return faiss


def choose_kind(params: IndexParams, n: int) -> str:
    """The kind to build for ``n`` vectors under ``params``.

    An ``"auto"`` policy falls back to flat when IVF-PQ would have too few vectors to
    train; an explicit ``kind="ivfpq"`` raises :class:`TooFewVectorsError` instead.
    """
    kind = params.kind_for(n)
    if kind == "ivfpq" and n < params.min_vectors_for_ivfpq(n):
        need = params.min_vectors_for_ivfpq(n)
        if params.kind == "auto":
            log.info("only %d vectors (IVF-PQ needs %d to train): using a flat index", n, need)
            return "flat"
        raise TooFewVectorsError(
            f"cannot train an ivfpq index on {n} vectors: it needs at least {need} "
            f"({params.min_train_per_centroid} per centroid of max(nlist={params.nlist_for(n)}, "
            f"2^pq_nbits={2**params.pq_nbits})); use kind 'flat' or 'auto', or a smaller ivf_nlist/pq_nbits"
        )
    return kind


class VectorIndex:
    """One faiss index with stable ids. Build with :meth:`empty` or :meth:`build`.

    Attributes: ``kind`` ("flat", "hnsw", "ivfpq"), ``dim``, ``params``;
    ``len(index)`` is the number of live (searchable) vectors.
    """

    def __init__(
        self,
        faiss_index: Any,
        kind: str,
        dim: int,
        params: IndexParams,
        tombstones: np.ndarray | None = None,
    ) -> None:
        if kind not in INDEX_KINDS:
            raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")
        self._index = faiss_index
        self.kind = kind
        self.dim = int(dim)
        self.params = params
        self._tombstones = np.unique(
            np.asarray(tombstones if tombstones is not None else [], dtype=np.int64)
        )
        stored = _stored_ids(faiss_index, kind)
        self._live = np.setdiff1d(stored, self._tombstones)
        self._selector: Any = None
        self._params_cache: dict[tuple[str, int], Any] = {}

    # ---------------------------------------------------------------- construction
    @classmethod
    def empty(cls, dim: int, kind: str = "flat", params: IndexParams | None = None) -> VectorIndex:
        """An empty flat or HNSW index (IVF-PQ must be trained: use :meth:`build`)."""
        params = params or IndexParams()
        if kind == "ivfpq":
            raise TooFewVectorsError("an ivfpq index must be trained: use VectorIndex.build")
        return cls(_new_faiss_index(kind, dim, params), kind, dim, params)

    @classmethod
    def build(
        cls,
        vectors: object,
        ids: object,
        params: IndexParams | None = None,
        *,
        dim: int | None = None,
    ) -> VectorIndex:
        """Build an index over ``vectors`` (N, D) with ``ids`` (N,), kind from ``params``.

        IVF-PQ is trained on ``params.train_size_for(N)`` vectors sampled with
        ``params.seed``; see :func:`choose_kind` for the too-few-vectors rule.
        """
        params = params or IndexParams()
        array = np.asarray(vectors)
        if dim is None:
            if array.ndim != 2:
                raise ValueError(f"vectors must be (N, D), got shape {array.shape}")
            dim = int(array.shape[1])
        return cls._build_rows(as_unit_rows(array, dim), as_ids(ids), params, dim)

    @classmethod
    def _build_rows(
        cls, rows: np.ndarray, id_array: np.ndarray, params: IndexParams, dim: int
    ) -> VectorIndex:
        """:meth:`build` on rows already checked by :func:`as_unit_rows` (package-internal:
        the updater's buffered rows are validated once, and a 1M-vector copy is 1 GiB)."""
        if len(id_array) != len(rows):
            raise ValueError(f"{len(rows)} vectors but {len(id_array)} ids")
        kind = choose_kind(params, len(rows))
        start = time.perf_counter()
        faiss_index = _new_faiss_index(kind, dim, params, len(rows))
        if kind == "ivfpq":
            _train_ivfpq(faiss_index, rows, params)
        index = cls(faiss_index, kind, dim, params)
        index._add_rows(rows, id_array)
        log.debug(
            "built %s index of %d vectors in %.2f s", kind, len(rows), time.perf_counter() - start
        )
        return index

    # ---------------------------------------------------------------- inspection
    def __len__(self) -> int:
        return len(self._live)

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, dim={self.dim}, live={len(self)}, tombstones={len(self._tombstones)})"

    @property
    def faiss_index(self) -> Any:
        """The underlying faiss index (for benchmarks and expert use; ids are external)."""
        return self._index

    @property
    def ntotal(self) -> int:
        """Vectors stored in faiss, tombstoned ones included."""
        return int(self._index.ntotal)

    @property
    def num_tombstones(self) -> int:
        return len(self._tombstones)

    def ids(self) -> np.ndarray:
        """Sorted live ids (a copy)."""
        return self._live.copy()

    def contains(self, ids: object) -> np.ndarray:
        """Boolean mask: which of ``ids`` are live in the index."""
        return np.isin(as_ids(ids), self._live)

    # ---------------------------------------------------------------- mutation
    def add(self, vectors: object, ids: object) -> None:
        """Add ``vectors`` (N, D) under new, unused ``ids`` (N,).

        Ids already live, or removed earlier from an HNSW index, are refused
        (faiss would otherwise hold two vectors under one id).
        """
        self._add_rows(as_unit_rows(vectors, self.dim), as_ids(ids))

    def _add_rows(self, rows: np.ndarray, ids: np.ndarray) -> None:
        if len(ids) != len(rows):
            raise ValueError(f"{len(rows)} vectors but {len(ids)} ids")
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids passed to add() must be unique")
        reused = ids[np.isin(ids, self._live) | np.isin(ids, self._tombstones)]
        if len(reused):
            raise ValueError(f"ids already used in this index: {reused[:5].tolist()}")
        self._index.add_with_ids(rows, ids)
        self._live = np.union1d(self._live, ids)

    def remove(self, ids: object) -> int:
        """Remove the live vectors among ``ids``; returns how many were removed."""
        present = np.unique(as_ids(ids))
        present = present[np.isin(present, self._live)]
        if len(present) == 0:
            return 0
        if self.kind == "hnsw":
            self._tombstones = np.union1d(self._tombstones, present)
            self._selector = None
            self._params_cache.clear()
        else:
            faiss = _faiss()
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(present)))
            if removed != len(present):
                raise StoreError(
                    f"faiss removed {removed} of {len(present)} ids: index is inconsistent"
                )
        self._live = np.setdiff1d(self._live, present, assume_unique=True)
        return len(present)

    def needs_compaction(self) -> bool:
        """True when removed-but-stored HNSW vectors exceed ``params.tombstone_ratio``."""
        return self.kind == "hnsw" and len(self._tombstones) > self.params.tombstone_ratio * max(
            self.ntotal, 1
        )

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of all live entries, sorted by id (flat and HNSW only).

        IVF-PQ keeps only compressed codes, so its vectors cannot be recovered.
        """
        if self.kind == "ivfpq":
            raise StoreError(
                "an ivfpq index keeps only compressed codes: the original vectors cannot be "
                "recovered; rebuild the index from the media files"
            )
        faiss = _faiss()
        inner = faiss.downcast_index(self._index.index)
        stored_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        rows = (
            inner.reconstruct_n(0, inner.ntotal)
            if inner.ntotal
            else np.zeros((0, self.dim), np.float32)
        )
        keep = ~np.isin(stored_ids, self._tombstones)
        stored_ids, rows = stored_ids[keep], rows[keep]
        order = np.argsort(stored_ids, kind="stable")
        return stored_ids[order], np.ascontiguousarray(rows[order], dtype=np.float32)

    def rebuilt(self, params: IndexParams | None = None) -> VectorIndex:
        """A fresh index over the live vectors, kind chosen by ``params`` (default: same policy).

        Used to compact an HNSW graph and to switch kinds as the library grows.
        """
        ids, rows = self.vectors()
        return VectorIndex._build_rows(rows, ids, params or self.params, self.dim)

    # ---------------------------------------------------------------- search
    def search(
        self,
        queries: object,
        k: int,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` live vectors by cosine similarity for each query.

        ``queries``: (Q, D) or (D,) (one query). Returns ``(scores, ids)``, both
        (Q, min(k, len(self))), best first, float32 / int64. Approximate kinds may find
        fewer than k: missing slots hold id -1 and score -inf. ``nprobe`` (IVF-PQ lists
        visited, default ``params.ivf_nprobe``) and ``ef_search`` (HNSW beam width,
        default ``params.hnsw_ef_search``, at least k) trade speed for recall.
        """
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return self._search_rows(
            as_unit_rows(queries, self.dim, what="query vectors"), int(k), nprobe, ef_search
        )

    def _search_rows(
        self, rows: np.ndarray, k: int, nprobe: int | None, ef_search: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` on rows already checked by :func:`as_unit_rows` (package-internal)."""
        kk = min(k, len(self))
        if kk == 0 or len(rows) == 0:
            return np.zeros((len(rows), kk), np.float32), np.zeros((len(rows), kk), np.int64)
        scores, ids = self._index.search(rows, kk, params=self.search_params(kk, nprobe, ef_search))
        scores[ids < 0] = -np.inf
        return scores, ids

    def search_params(self, k: int, nprobe: int | None = None, ef_search: int | None = None) -> Any:
        """The faiss ``SearchParameters`` of a k-search (None for flat), cached per setting.

        HNSW: efSearch = max(ef_search or params.hnsw_ef_search, k), plus the tombstone
        filter; IVF-PQ: nprobe or params.ivf_nprobe. Searches only read these objects,
        so one can serve concurrent searches.
        """
        if self.kind == "flat":
            return None
        if self.kind == "hnsw":
            key: tuple[str, int] = ("ef", max(int(ef_search or self.params.hnsw_ef_search), k))
        else:
            key = ("nprobe", int(nprobe or self.params.ivf_nprobe))
        cached = self._params_cache.get(key)
        if cached is None:
            cached = self._params_cache[key] = self._make_search_params(*key)
        return cached

    def _make_search_params(self, knob: str, value: int) -> Any:
        faiss = _faiss()
        if knob == "nprobe":
            return faiss.SearchParametersIVF(nprobe=value)
        if len(self._tombstones) == 0:
            return faiss.SearchParametersHNSW(efSearch=value)
        if self._selector is None:
            batch = faiss.IDSelectorBatch(self._tombstones)
            # Keep the inner selector alive as long as the outer one (faiss holds raw pointers).
            self._selector = (faiss.IDSelectorNot(batch), batch)
        return faiss.SearchParametersHNSW(efSearch=value, sel=self._selector[0])

    # ---------------------------------------------------------------- persistence
    def save(self, stem: str | os.PathLike[str]) -> list[str]:
        """Write ``<stem>.faiss``, ``<stem>.index.json`` (and ``<stem>.tombstones.npy``), atomically each.

        Returns the file names written (relative to the stem's folder).
        """
        stem = Path(stem)
        written = [f"{stem.name}.faiss", f"{stem.name}.index.json"]
        try:
            atomic_write(stem.parent / written[0], self._write_faiss)
        except RuntimeError as err:  # faiss reports its own failed writes this way
            raise write_failure(stem.parent / written[0], err) from err
        if len(self._tombstones):
            name = f"{stem.name}.tombstones.npy"
            atomic_write(stem.parent / name, lambda tmp: _save_npy(tmp, self._tombstones))
            written.append(name)
        header = {
            "format": INDEX_FORMAT,
            "kind": self.kind,
            "dim": self.dim,
            "live": len(self),
            "ntotal": self.ntotal,
            "tombstones": len(self._tombstones),
            "params": self.params.to_dict(),
        }
        atomic_write_text(stem.parent / written[1], json.dumps(header, indent=2) + "\n")
        return written

    def _write_faiss(self, path: str) -> None:
        # Through a Python file, not faiss's own FILE*: faiss ignores a failed fclose, so a
        # full disk could leave a silently truncated file; Python raises ENOSPC instead.
        faiss = _faiss()
        try:
            with open(path, "wb") as f:
                faiss.write_index(self._index, faiss.PyCallbackIOWriter(f.write))
        except OSError as err:
            if err.filename is None:  # a failed write() names no file: name the index
                raise OSError(err.errno, err.strerror, path) from err
            raise

    @staticmethod
    def load_header(stem: str | os.PathLike[str]) -> dict[str, Any]:
        """The ``<stem>.index.json`` header (kind, dim, counts, params) without loading the index."""
        stem = Path(stem)
        header_path = stem.parent / f"{stem.name}.index.json"
        try:
            header = json.loads(header_path.read_text(encoding="utf-8"))
            kind, fmt = header["kind"], int(header["format"])
            int(header["dim"])
            IndexParams.from_dict(header["params"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StoreCorruptError(f"cannot read index header {header_path}: {err}") from err
        if fmt != INDEX_FORMAT or kind not in INDEX_KINDS:
            raise StoreCorruptError(
                f"{header_path}: unsupported index format {fmt} / kind {kind!r}"
            )
        return header

    @classmethod
    def load(cls, stem: str | os.PathLike[str]) -> VectorIndex:
        """Read an index written by :meth:`save`; damaged files raise :class:`StoreCorruptError`."""
        faiss = _faiss()
        stem = Path(stem)
        header = cls.load_header(stem)
        kind, dim = header["kind"], int(header["dim"])
        params = IndexParams.from_dict(header["params"])
        header_path = stem.parent / f"{stem.name}.index.json"
        path = stem.parent / f"{stem.name}.faiss"
        try:
            faiss_index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise StoreCorruptError(
                f"cannot read faiss index {path} ({faiss_reason(err)}); rebuild the index"
            ) from err
        if (
            faiss_index.d != dim
            or faiss_index.metric_type != faiss.METRIC_INNER_PRODUCT
            or not _has_kind(faiss_index, kind)
        ):
            raise StoreCorruptError(
                f"{path}: kind/dimension/metric do not match its header {header_path.name}"
            )
        tombstones = None
        if header.get("tombstones"):
            tomb_path = stem.parent / f"{stem.name}.tombstones.npy"
            try:
                tombstones = np.load(tomb_path, allow_pickle=False)
            except (OSError, ValueError) as err:
                raise StoreCorruptError(f"cannot read {tomb_path}: {err}") from err
        try:
            index = cls(faiss_index, kind, dim, params, tombstones)
        except (ValueError, TypeError) as err:
            raise StoreCorruptError(f"{path}: unreadable ids or tombstones ({err})") from err
        if len(index) != header.get("live") or index.ntotal != header.get("ntotal"):
            raise StoreCorruptError(
                f"{path}: holds {index.ntotal} vectors ({len(index)} live), "
                f"its header says {header.get('ntotal')} ({header.get('live')} live)"
            )
        bad = index.first_non_unit_row()
        if bad is not None:
            raise StoreCorruptError(
                f"{path}: stored vector {bad[0]} has length {bad[1]:.6g}, not 1 (a damaged or "
                "foreign index would return meaningless scores); rebuild the index"
            )
        return index

    def first_non_unit_row(
        self, tolerance: float = UNIT_NORM_TOLERANCE
    ) -> tuple[int, float] | None:
        """``(position, norm)`` of the first stored vector whose L2 norm is not 1 within
        ``tolerance`` (or not finite), None when all are. Reads faiss's storage in place
        (no copy). IVF-PQ keeps lossy codes of unit vectors: its norms are not checked."""
        if self.kind == "ivfpq" or self.ntotal == 0:
            return None
        faiss = _faiss()
        inner = faiss.downcast_index(self._index.index)
        flat = inner if self.kind == "flat" else faiss.downcast_index(inner.storage)
        stored = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(-1, self.dim)
        for lo in range(0, len(stored), _NORM_CHUNK):
            chunk = stored[lo : lo + _NORM_CHUNK].astype(np.float64)
            norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
            off = ~(np.abs(norms - 1.0) <= tolerance)  # NaN counts as off
            if off.any():
                row = int(np.flatnonzero(off)[0])
                return lo + row, float(norms[row])
        return None


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _new_faiss_index(kind: str, dim: int, params: IndexParams, n: int = 0) -> Any:
    faiss = _faiss()
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        graph = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = params.hnsw_ef_construction
        graph.hnsw.efSearch = params.hnsw_ef_search
        return faiss.IndexIDMap2(graph)
    if kind == "ivfpq":
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(
            quantizer,
            dim,
            params.nlist_for(n),
            params.pq_m_for(dim),
            params.pq_nbits,
            faiss.METRIC_INNER_PRODUCT,
        )
        index.nprobe = params.ivf_nprobe
        return index
    raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")


def _has_kind(faiss_index: Any, kind: str) -> bool:
    faiss = _faiss()
    if kind == "ivfpq":
        return isinstance(faiss_index, faiss.IndexIVFPQ)
    if not isinstance(faiss_index, faiss.IndexIDMap2):
        return False
    inner = faiss.downcast_index(faiss_index.index)
    return isinstance(inner, faiss.IndexHNSWFlat if kind == "hnsw" else faiss.IndexFlat)


def _train_ivfpq(index: Any, rows: np.ndarray, params: IndexParams) -> None:
    size = params.train_size_for(len(rows))
    rng = np.random.default_rng(params.seed)
    sample = (
        rows if size >= len(rows) else rows[np.sort(rng.choice(len(rows), size, replace=False))]
    )
    index.cp.seed = params.seed
    index.pq.cp.seed = params.seed
    start = time.perf_counter()
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    log.debug(
        "trained ivfpq (nlist=%d) on %d vectors in %.2f s",
        index.nlist,
        size,
        time.perf_counter() - start,
    )


def _stored_ids(faiss_index: Any, kind: str) -> np.ndarray:
    """Sorted ids of every vector stored in ``faiss_index`` (tombstoned ones included)."""
    faiss = _faiss()
    if kind in ("flat", "hnsw"):
        ids = faiss.vector_to_array(faiss_index.id_map).astype(np.int64)
    else:
        invlists = faiss_index.invlists
        parts = []
        for list_no in range(faiss_index.nlist):
            size = invlists.list_size(list_no)
            if size:
                ptr = invlists.get_ids(list_no)
                parts.append(faiss.rev_swig_ptr(ptr, size).astype(np.int64))
                invlists.release_ids(list_no, ptr)
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return np.sort(ids)
