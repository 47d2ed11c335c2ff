"""A published store version loaded for searching (the reader side).

A snapshot holds the catalog (read-only) and each modality's faiss index in memory, so
it keeps answering while writers publish newer versions and old folders are deleted.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from crossmodal.retrieval.best_window import first_per_item
from crossmodal.retrieval.catalog import Catalog, WindowTable
from crossmodal.retrieval.errors import StoreCorruptError
from crossmodal.retrieval.item_index import ItemIndex
from crossmodal.retrieval.layout import CATALOG, MANIFEST, VERSIONS, Pointer, check_manifest
from crossmodal.retrieval.records import MODALITIES, Hit, Item, StoreInfo, check_modality
from crossmodal.retrieval.vector_index import VectorIndex
from crossmodal.retrieval.vectors import as_unit_rows

log = logging.getLogger(__name__)

# Per-item search grows its window fetch by this factor until it has k distinct items.
_FETCH_GROWTH = 4


class StoreSnapshot:
    """One version of an INDEX_DIR, ready to search. Use :meth:`load`; close when done."""

    def __init__(
        self,
        root: Path,
        pointer: Pointer,
        catalog: Catalog,
        indexes: dict[str, VectorIndex],
        tables: dict[str, WindowTable],
        item_stages: dict[str, ItemIndex] | None = None,
    ) -> None:
        self.root = root
        self.version = pointer.version
        self.catalog = catalog
        self._indexes = indexes
        self._tables = tables
        self._item_stages = item_stages or {}
        self._meta = catalog.all_meta()
        self._item_cache: dict[int, Item] = {}
        counts = {m: catalog.count_items(m) for m in indexes}
        self._items_count = counts
        # Mean windows per item sizes the first fetch of a per-item search.
        self._windows_per_item = {
            m: len(tables[m]) / counts[m] if counts[m] else 1.0 for m in indexes
        }

    @classmethod
    def load(
        cls, root: Path, pointer: Pointer, modalities: tuple[str, ...] = MODALITIES
    ) -> StoreSnapshot:
        """Load version ``pointer.version`` of ``root``; damaged files raise :class:`StoreCorruptError`."""
        version_dir = root / VERSIONS / pointer.version
        if not version_dir.is_dir():
            raise StoreCorruptError(
                f"{root}: version {pointer.version} named by CURRENT is missing"
            )
        manifest = check_manifest(version_dir)
        for modality in modalities:
            check_modality(modality)
        needed = [CATALOG] + [f"{m}.{ext}" for m in modalities for ext in ("faiss", "index.json")]
        unlisted = [name for name in needed if name not in manifest["files"]]
        if unlisted:
            raise StoreCorruptError(
                f"{version_dir}: {MANIFEST} does not list {', '.join(unlisted)}; rebuild the index"
            )
        catalog = Catalog.open(version_dir / CATALOG, readonly=True)
        try:
            _check_store_meta(catalog)
            indexes: dict[str, VectorIndex] = {}
            tables: dict[str, WindowTable] = {}
            stages: dict[str, ItemIndex] = {}
            for modality in modalities:
                index = VectorIndex.load(version_dir / modality)
                table = catalog.window_table(modality)
                if index.dim != catalog.get_meta("dim") or not np.array_equal(
                    index.ids(), table.vector_ids
                ):
                    raise StoreCorruptError(
                        f"{version_dir}: the {modality} index ({len(index)} vectors) and the catalog "
                        f"({len(table)} windows) disagree; rebuild the index"
                    )
                indexes[modality], tables[modality] = index, table
                if ItemIndex.exists(version_dir / modality):
                    stages[modality] = ItemIndex.load(version_dir / modality).attach(index, table)
            return cls(root, pointer, catalog, indexes, tables, stages)
        except BaseException:
            catalog.close()
            raise

    # ---------------------------------------------------------------- facts
    @property
    def dim(self) -> int:
        return int(self._meta["dim"])

    @property
    def fingerprint(self) -> str:
        return str(self._meta["fingerprint"])

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self._indexes)

    def info(self) -> StoreInfo:
        """Model, format, kinds and counts of this version."""
        return StoreInfo(
            root=str(self.root),
            version=self.version,
            store_format=int(self._meta["store_format"]),
            fingerprint=self.fingerprint,
            dim=self.dim,
            crossmodal_version=str(self._meta.get("crossmodal_version", "")),
            index_kinds={m: idx.kind for m, idx in self._indexes.items()},
            items=dict(self._items_count),
            windows={m: len(idx) for m, idx in self._indexes.items()},
            created=str(self._meta.get("created", "")),
            updated=str(self._meta.get("updated", "")),
        )

    def index(self, modality: str) -> VectorIndex:
        """The loaded :class:`VectorIndex` of ``modality``."""
        check_modality(modality)
        if modality not in self._indexes:
            raise ValueError(f"this snapshot was opened without the {modality} index")
        return self._indexes[modality]

    def items(self, modality: str | None = None) -> list[Item]:
        return self.catalog.items(modality)

    def items_by_path(self, path: str, modality: str | None = None) -> list[Item]:
        return self.catalog.items_by_path(path, modality)

    def close(self) -> None:
        self.catalog.close()

    # ---------------------------------------------------------------- search
    def search_vectors(
        self,
        modality: str,
        queries: object,
        k: int = 10,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw top-k windows: ``(scores, vector_ids)`` as :meth:`VectorIndex.search`."""
        return self.index(modality).search(queries, k, nprobe=nprobe, ef_search=ef_search)

    def search(
        self,
        modality: str,
        queries: object,
        k: int = 10,
        *,
        per_item: bool = True,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits of ``modality`` for each query vector (Q, D) or (D,).

        ``per_item=True``: the k best *items*, each scored by its best window (max over
        its windows' cosine similarities) and reported with that window's start/end.
        Windows are over-fetched (k × mean windows per item, then ×4 until k distinct
        items are found or the whole index was fetched), so items with many windows
        cannot crowd others out. ``per_item=False``: the k best windows (an item may
        repeat). Returns one best-first list per query; an empty index gives empty lists.
        Large indexes answer ``per_item`` searches with their item stage instead
        (:mod:`crossmodal.retrieval.item_index`: candidate items from a graph of pooled
        item vectors, then exact scores of their windows), unless ``nprobe`` or
        ``ef_search`` is given.
        """
        index = self.index(modality)
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        rows = as_unit_rows(queries, self.dim, what="query vectors")
        table = self._tables[modality]
        live = len(index)
        if live == 0 or len(rows) == 0:
            return [[] for _ in range(len(rows))]
        # The item stage answers per-item searches unless the caller set a window knob.
        stage = (
            self._item_stages.get(modality)
            if per_item and nprobe is None and ef_search is None
            else None
        )
        if per_item:
            fetch = min(live, max(k, math.ceil(k * self._windows_per_item[modality])))
        else:
            fetch = min(live, k)
        # Kept hits of finished queries: (query, score, vector id, table row), row-major.
        parts: list[tuple[np.ndarray, ...]] = []
        pending = np.arange(len(rows))
        while len(pending):
            if stage is not None:  # k distinct items already: no grouping
                scores, vids = stage.search(rows[pending], k)
            else:
                scores, vids = index._search_rows(rows[pending], fetch, nprobe, ef_search)
            pos = table.positions(vids)
            if stage is not None:
                keep = pos >= 0
                done = np.ones(len(pending), dtype=bool)
            elif per_item:
                keep = first_per_item(np.where(pos >= 0, table.item_ids[pos], -1), k)
                # Stop growing when k items were found, everything was fetched, or an
                # approximate index returned fewer windows than asked (it has no more to give).
                exhausted = (vids >= 0).sum(axis=1) < vids.shape[1]
                done = (keep.sum(axis=1) >= k) | (fetch >= live) | exhausted
                keep &= done[:, None]
            else:  # fetch == k: every known window is a hit
                keep = pos >= 0
                done = np.ones(len(pending), dtype=bool)
            if keep.all():  # the common case: no gather needed
                hit_query = np.repeat(pending, keep.shape[1])
                parts.append((hit_query, scores.ravel(), vids.ravel(), pos.ravel()))
            else:
                hit_rows, hit_cols = np.nonzero(keep)
                parts.append(
                    (
                        pending[hit_rows],
                        scores[hit_rows, hit_cols],
                        vids[hit_rows, hit_cols],
                        pos[hit_rows, hit_cols],
                    )
                )
            pending = pending[~done]
            fetch = min(live, fetch * _FETCH_GROWTH)
        if len(parts) == 1:  # one round: already grouped by query, best first
            query_of, scores, vids, pos = parts[0]
        else:
            query_of, scores, vids, pos = (
                np.concatenate(column) for column in zip(*parts, strict=True)
            )
            order = np.argsort(query_of, kind="stable")  # group by query, rank order kept
            query_of, scores, vids, pos = query_of[order], scores[order], vids[order], pos[order]
        # One tolist() per column: element-wise numpy scalars would cost ~5 µs a hit.
        item_ids = table.item_ids[pos].tolist()
        items = self._items(set(item_ids))
        hits = [
            Hit(item=items[i], score=sc, vector_id=v, start=a, end=b)
            for i, sc, v, a, b in zip(
                item_ids,
                scores.tolist(),
                vids.tolist(),
                table.starts[pos].tolist(),
                table.ends[pos].tolist(),
                strict=True,
            )
        ]
        bounds = np.cumsum(np.bincount(query_of, minlength=len(rows))).tolist()
        return [hits[lo:hi] for lo, hi in zip([0, *bounds[:-1]], bounds, strict=True)]

    def preload_items(self) -> int:
        """Read every item of the loaded modalities into the item cache; returns how many.

        Searches otherwise fetch unseen items from SQLite (one query per search); a
        long-running server can pay that once at start (~1 s per 100k items).
        """
        ids = {i for table in self._tables.values() for i in table.item_ids.tolist()}
        return len(self._items(ids))

    def _items(self, item_ids: set[int]) -> dict[int, Item]:
        """Items by id through a cache (published catalogs never change)."""
        missing = [i for i in item_ids if i not in self._item_cache]
        if missing:
            found = self.catalog.items_by_ids(missing)
            if len(found) != len(missing):
                raise StoreCorruptError(
                    f"{self.root} version {self.version}: windows point to unknown items "
                    f"{sorted(set(missing) - set(found))[:5]}"
                )
            self._item_cache.update(found)
        return {i: self._item_cache[i] for i in item_ids}


def _check_store_meta(catalog: Catalog) -> None:
    """The metadata every reader relies on, with its types (a malformed row raises here,
    not as a KeyError in the middle of a search)."""
    meta = catalog.all_meta()
    expected = {"fingerprint": str, "dim": int, "store_format": int}
    for key, kind in expected.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise StoreCorruptError(
                f"catalog {catalog.path}: metadata {key!r} is {value!r}, expected a "
                f"{kind.__name__}; rebuild the index"
            )
    if meta["dim"] < 1 or not meta["fingerprint"]:
        raise StoreCorruptError(f"catalog {catalog.path}: metadata is invalid; rebuild the index")
