"""Item-level first stage for per-item search: pooled item vectors, then exact windows.

Per-item search ranks items by their best window. Searching windows and grouping them
has to over-fetch (k × windows per item, 80 at 8 windows and k=10) so that an item with
many similar windows does not crowd the others out, and an approximate window index
loses recall as it grows (bench/results/index.md: 0.825 of the true top-10 items at 1M
windows with HNSW). This stage searches *items* instead:

1. an HNSW graph over one vector per item, the normalised mean of its windows (8× fewer
   nodes than windows: 8× faster to build, shorter searches), returns ``candidates``
   items;
2. each candidate's windows are scored exactly against the query (the window vectors
   the flat or HNSW window index already holds, read in place, no copy), and the
   candidates are ranked by their best window — the same score as exact search.

The only approximation is whether an item of the exact top-k is among the candidates;
``candidates`` (with the HNSW beam equal to it) is tuned at build time for
``IndexParams.recall_target`` exactly as :mod:`crossmodal.retrieval.recall_tuning` tunes
the window knobs: stored windows as queries, their own window left out, against exact
per-item search. Files: ``<modality>.items.faiss`` (the graph, faiss ids = item ids) and
``<modality>.items.json`` (the tuned values) in the version folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crossmodal.fileio import atomic_write, atomic_write_text
from crossmodal.retrieval.errors import StoreCorruptError
from crossmodal.retrieval.recall_tuning import exact_top, recall_bound

if TYPE_CHECKING:
    from crossmodal.retrieval.catalog import WindowTable
    from crossmodal.retrieval.index_params import IndexParams
    from crossmodal.retrieval.vector_index import VectorIndex

log = logging.getLogger(__name__)

ITEMS_SUFFIX = ".items"
CANDIDATE_STEPS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # × k


@dataclass(frozen=True)
class ItemStageInfo:
    """Stored with the graph: candidates per k (×k), the recall they reached, the target."""

    candidates_per_k: float
    recall_k: int
    measured_recall: float | None
    recall_target: float | None
    items: int

    def candidates(self, k: int, n_items: int) -> int:
        """Candidate items fetched for a top-``k`` search."""
        return int(min(n_items, max(k, round(self.candidates_per_k * k))))


class ItemIndex:
    """The item stage of one modality: graph over item vectors + exact window re-rank.

    Build with :meth:`build` (then :meth:`tune`, :meth:`save`), read with :meth:`load`;
    :meth:`attach` binds it to the loaded window index and catalog before searching.
    """

    def __init__(self, graph: Any, info: ItemStageInfo) -> None:
        self._graph = graph
        self.info = info
        self._windows: np.ndarray | None = None  # (ntotal, D) view of the window storage
        self._window_ids: np.ndarray | None = None  # vector id at each storage row
        self._by_item: np.ndarray | None = None  # storage rows grouped by item
        self._offsets: np.ndarray | None = None  # item slot → slice of _by_item
        self._item_ids: np.ndarray | None = None  # sorted item ids (slot order)
        self._params_cache: dict[int, Any] = {}
        self._keep_alive: VectorIndex | None = None  # owner of the memory _windows views

    # ---------------------------------------------------------------- building
    @classmethod
    def build(cls, rows: np.ndarray, item_of: np.ndarray, params: IndexParams) -> ItemIndex:
        """Graph over the normalised mean window of each item (``rows`` aligned with ``item_of``)."""
        import faiss

        start = time.perf_counter()
        items, slot = np.unique(item_of, return_inverse=True)
        pooled = np.zeros((len(items), rows.shape[1]), np.float32)
        np.add.at(pooled, slot, rows)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        graph = faiss.IndexHNSWFlat(rows.shape[1], params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = params.hnsw_ef_construction
        index = faiss.IndexIDMap2(graph)
        index.add_with_ids(pooled, items.astype(np.int64))
        log.debug("built item graph of %d items in %.2f s", len(items), time.perf_counter() - start)
        info = ItemStageInfo(8.0, params.recall_k, None, params.recall_target, len(items))
        return cls(index, info)

    def attach(self, windows: VectorIndex, table: WindowTable) -> ItemIndex:
        """Read window vectors in place from ``windows`` (flat or HNSW) and group them by item."""
        import faiss

        inner = faiss.downcast_index(windows.faiss_index.index)
        storage = faiss.downcast_index(inner.storage) if hasattr(inner, "storage") else inner
        ntotal, dim = int(storage.ntotal), int(storage.d)
        self._windows = faiss.rev_swig_ptr(storage.get_xb(), ntotal * dim).reshape(ntotal, dim)
        self._keep_alive = windows
        self._window_ids = faiss.vector_to_array(windows.faiss_index.id_map).astype(np.int64)
        pos = table.positions(self._window_ids)
        rows = np.flatnonzero(pos >= 0)  # removed (tombstoned) windows are not in the table
        item_of = table.item_ids[pos[rows]]
        order = np.argsort(item_of, kind="stable")
        self._by_item = rows[order]
        self._item_ids, counts = np.unique(item_of[order], return_counts=True)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        if int(self._graph.ntotal) != len(self._item_ids):
            raise StoreCorruptError(
                f"the item stage holds {self._graph.ntotal} items, the catalog "
                f"{len(self._item_ids)}; rebuild the index"
            )
        return self

    # ---------------------------------------------------------------- searching
    def search(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query: ``(scores, best window vector ids)``, (Q, k), best first.

        Missing slots (fewer candidate items than k) hold id -1 and score -inf.
        """
        candidates = self.info.candidates(k, len(self._item_ids))
        return self._search(rows, k, candidates, None)

    def _search(
        self, rows: np.ndarray, k: int, candidates: int, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search with ``candidates`` items; ``exclude``: one vector id per query left out."""
        assert self._windows is not None
        assert self._offsets is not None
        assert self._by_item is not None
        assert self._window_ids is not None
        kk = min(k, len(self._item_ids))
        scores = np.full((len(rows), kk), -np.inf, np.float32)
        vids = np.full((len(rows), kk), -1, np.int64)
        if kk == 0:
            return scores, vids
        _, cand = self._graph.search(rows, candidates, params=self._search_params(candidates))
        for q, found in enumerate(cand):
            slots = np.searchsorted(self._item_ids, found[found >= 0])
            if len(slots) == 0:
                continue
            lo, lengths = self._offsets[slots], np.diff(self._offsets)[slots]
            bounds = np.cumsum(lengths) - lengths  # each candidate's first window below
            # Storage rows of every candidate's windows, item after item (one gather).
            storage_rows = self._by_item[
                np.repeat(lo - bounds, lengths) + np.arange(bounds[-1] + lengths[-1])
            ]
            sims = self._windows[storage_rows] @ rows[q]
            if exclude is not None:
                sims[self._window_ids[storage_rows] == exclude[q]] = -np.inf
            best = np.maximum.reduceat(sims, bounds)
            top = np.argsort(-best, kind="stable")[:kk]
            top = top[np.isfinite(best[top])]
            # Each kept item's best window: its first window scoring its maximum.
            at_max = np.flatnonzero(sims == np.repeat(best, lengths))
            first = at_max[np.searchsorted(at_max, bounds[top])]
            scores[q, : len(top)] = best[top]
            vids[q, : len(top)] = self._window_ids[storage_rows[first]]
        return scores, vids

    def _search_params(self, candidates: int) -> Any:
        cached = self._params_cache.get(candidates)
        if cached is None:
            import faiss

            cached = self._params_cache[candidates] = faiss.SearchParametersHNSW(
                efSearch=candidates
            )
        return cached

    # ---------------------------------------------------------------- tuning
    def tune(
        self, params: IndexParams, rows: np.ndarray, ids: np.ndarray, item_of: np.ndarray
    ) -> None:
        """Choose candidates per k for ``params.recall_target`` (see the module docstring).

        ``rows``, ``ids``, ``item_of``: every live window, aligned (the exact side).
        """
        if params.recall_target is None:
            return
        n_items = len(self._item_ids)
        k = min(params.recall_k, n_items - 1)
        if k < 1:
            self.info = _with(self.info, candidates_per_k=1.0, measured_recall=1.0)
            return
        rng = np.random.default_rng(params.seed)
        sample = np.sort(rng.choice(len(ids), min(params.recall_sample, len(ids)), replace=False))
        exact = exact_top(rows, sample, k, item_of)
        queries = np.ascontiguousarray(rows[sample])
        order = np.argsort(ids)
        recall, per_k = 0.0, 1.0
        for step in CANDIDATE_STEPS:
            candidates = min(n_items, step * k)
            _, vids = self._search(queries, k, candidates, exclude=ids[sample])
            pos = order[np.minimum(np.searchsorted(ids, vids, sorter=order), len(ids) - 1)]
            found_items = np.where(vids >= 0, item_of[pos], -1)
            found = [set(row[row >= 0].tolist()) for row in found_items]
            recall, lower = recall_bound(found, exact)
            per_k = float(step)
            if lower >= params.recall_target or candidates >= n_items:
                break
        self.info = _with(self.info, candidates_per_k=per_k, measured_recall=recall)
        log.log(
            logging.INFO if recall >= params.recall_target else logging.WARNING,
            "item stage: %d candidates for k=%d give recall@%d items %.3f (target %.2f)",
            min(n_items, int(per_k * k)),
            k,
            k,
            recall,
            params.recall_target,
        )

    # ---------------------------------------------------------------- persistence
    def save(self, stem: str | os.PathLike[str]) -> list[str]:
        """Write ``<stem>.items.faiss`` and ``<stem>.items.json``; returns the names."""
        import faiss

        stem = Path(stem)
        names = [f"{stem.name}{ITEMS_SUFFIX}.faiss", f"{stem.name}{ITEMS_SUFFIX}.json"]
        atomic_write(stem.parent / names[0], lambda tmp: faiss.write_index(self._graph, tmp))
        atomic_write_text(stem.parent / names[1], json.dumps(self.info.__dict__, indent=2) + "\n")
        return names

    @staticmethod
    def exists(stem: str | os.PathLike[str]) -> bool:
        stem = Path(stem)
        return (stem.parent / f"{stem.name}{ITEMS_SUFFIX}.json").is_file()

    @classmethod
    def load(cls, stem: str | os.PathLike[str]) -> ItemIndex:
        import faiss

        stem = Path(stem)
        graph_path = stem.parent / f"{stem.name}{ITEMS_SUFFIX}.faiss"
        info_path = stem.parent / f"{stem.name}{ITEMS_SUFFIX}.json"
        try:
            info = ItemStageInfo(**json.loads(info_path.read_text(encoding="utf-8")))
            graph = faiss.read_index(str(graph_path))
        except (OSError, ValueError, TypeError, RuntimeError) as err:
            raise StoreCorruptError(f"cannot read the item stage {graph_path}: {err}") from err
        return cls(graph, info)


def _with(info: ItemStageInfo, **changes: Any) -> ItemStageInfo:
    return ItemStageInfo(**{**info.__dict__, **changes})


def build_item_stage(
    index: VectorIndex,
    table: WindowTable,
    stem: str | os.PathLike[str],
    rows: np.ndarray | None = None,
    ids: np.ndarray | None = None,
) -> ItemIndex | None:
    """Build, tune and save the item stage of ``index`` when its params ask for one.

    ``rows``/``ids``: its live vectors (aligned) when at hand, else read back from it.
    Returns the stage (None when the policy does not want one: too few windows, no
    ``item_stage_min``, or an IVF-PQ window index, which keeps no exact vectors).
    """
    params = index.params
    if params.item_stage_min is None or index.kind == "ivfpq" or len(index) < params.item_stage_min:
        return None
    if rows is None or ids is None:
        ids, rows = index.vectors()
    pos = table.positions(ids)
    item_of = table.item_ids[pos]
    stage = ItemIndex.build(rows, item_of, params).attach(index, table)
    stage.tune(params, rows, ids, item_of)
    stage.save(stem)
    return stage
