"""The writer side: build the next version of an INDEX_DIR beside the current one, then publish.

Get one from :meth:`crossmodal.retrieval.IndexStore.begin_update`. It holds the writer
lock, works on a private staging folder (a copy of the current catalog; the current
faiss indexes are loaded only for the modalities it touches) and publishes on
:meth:`StoreUpdater.commit` with one ``os.replace`` of CURRENT. Any exception inside a
``with`` block, or :meth:`StoreUpdater.abort`, discards the staging folder; a killed
process leaves it behind for the next writer to delete. Readers never see it.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal import __version__
from crossmodal.fileio import fsync_path, remove_temp_files_of
from crossmodal.retrieval.catalog import Catalog, now_iso, resolve_path
from crossmodal.retrieval.errors import (
    IncompatibleStoreError,
    InvalidVectorsError,
    StoreError,
    TooFewVectorsError,
)
from crossmodal.retrieval.index_params import IndexParams
from crossmodal.retrieval.item_index import build_item_stage
from crossmodal.retrieval.layout import (
    CATALOG,
    MODELS_DIR,
    POINTER,
    STAGING_PREFIX,
    STORE_FORMAT,
    VERSIONS,
    Pointer,
    check_manifest,
    parse_version,
    version_name,
    write_manifest,
    write_pointer,
)
from crossmodal.retrieval.lock import WriterLock
from crossmodal.retrieval.recall_tuning import tune_index
from crossmodal.retrieval.records import MODALITIES, Item, ItemMeta, StoreInfo, check_modality
from crossmodal.retrieval.vector_index import VectorIndex
from crossmodal.retrieval.vectors import as_unit_rows

log = logging.getLogger(__name__)

# Catalog metadata key of the files earlier runs could not index (see record_failure).
FAILED_KEY = "failed"


class StoreUpdater:
    """Incremental changes to a store, published atomically by :meth:`commit`.

    Use as a context manager: a clean exit commits, an exception aborts. Methods:
    :meth:`needs_embedding`, :meth:`add_item`, :meth:`remove_item`,
    :meth:`remove_missing`, :meth:`commit`, :meth:`abort`. Not thread-safe.
    """

    def __init__(
        self,
        root: Path,
        lock: WriterLock,
        base: Pointer | None,
        previous: str | None,
        number: int,
        fingerprint: str,
        dim: int,
        params: IndexParams,
    ) -> None:
        """Internal: use :meth:`IndexStore.begin_update` (it takes the lock and checks the base)."""
        self.root = root
        self.fingerprint = fingerprint
        self.dim = dim
        self.params = params
        self._lock = lock
        self._base = base
        self._previous = previous
        self._base_dir = root / VERSIONS / base.version if base else None
        self._name = version_name(number)
        self._staging = root / VERSIONS / f"{STAGING_PREFIX}{self._name}-{os.getpid()}"
        # We hold the lock, so any staging folder is a killed writer's leftover.
        self._remove_leftovers(keep=set(), numbered=False)
        self._staging.mkdir(parents=True)
        self._done = False
        self._indexes: dict[str, VectorIndex | None] = {}
        # Per modality: vectors added in this update by item id, and base vector ids removed.
        self._pending: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {
            m: {} for m in MODALITIES
        }
        self._removed: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
        self._touched: set[str] = set()
        self._reindex: set[str] = set()
        self.added: list[Item] = []
        self.removed: list[Item] = []
        # Manifest entries of files linked unchanged from the base version.
        self._known: dict[str, dict[str, Any]] = {}
        # False after a commit that found nothing to change (no version was published).
        self.published = False
        self._failures_changed = False
        try:
            if self._base_dir is not None:
                shutil.copyfile(self._base_dir / CATALOG, self._staging / CATALOG)
                self._catalog = Catalog.open(self._staging / CATALOG, readonly=False)
            else:
                self._catalog = Catalog.create(self._staging / CATALOG)
                self._catalog.set_meta(created=now_iso())
        except BaseException:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise
        # Files that failed in earlier runs: {modality: {resolved path: entry}}.
        stored = self._catalog.get_meta(FAILED_KEY, {})
        self._failed: dict[str, dict[str, dict[str, Any]]] = {
            m: dict(v)
            for m, v in (stored.items() if isinstance(stored, dict) else ())
            if m in MODALITIES and isinstance(v, dict)
        }

    # ---------------------------------------------------------------- context manager
    def __enter__(self) -> StoreUpdater:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    @property
    def catalog(self) -> Catalog:
        """The working catalog (reflects this update's changes; do not write to it directly)."""
        return self._catalog

    @property
    def version(self) -> str:
        """The version this update will publish."""
        return self._name

    def _check_open(self) -> None:
        if self._done:
            raise StoreError("this update was already committed or aborted")

    # ---------------------------------------------------------------- queries
    def needs_embedding(
        self,
        path: str | os.PathLike[str],
        size: int,
        mtime: float,
        checksum: str | None,
        *,
        modality: str | None = None,
    ) -> bool:
        """False when ``path`` is catalogued with this size, mtime and checksum (unchanged).

        ``checksum=None`` compares size and mtime only; ``modality=None`` requires every
        modality the path is catalogued under to match.
        """
        self._check_open()
        return not self._catalog.is_unchanged(path, size, mtime, checksum, modality)

    def known_failure(
        self, modality: str, path: str | os.PathLike[str], checksum: str
    ) -> str | None:
        """The reason ``path`` failed in an earlier run, if it is unchanged since (same
        ``checksum``) and this crossmodal version is the one that failed it; else None
        (then the file should be tried again)."""
        self._check_open()
        entry = self._failed.get(check_modality(modality), {}).get(resolve_path(path))
        if entry and entry.get("checksum") == checksum and entry.get("by") == __version__:
            return str(entry.get("reason", "failed before"))
        return None

    def record_failure(
        self, modality: str, path: str | os.PathLike[str], checksum: str, reason: str
    ) -> None:
        """Remember that ``path`` (content ``checksum``) could not be indexed, so later runs
        skip it until it changes (see :meth:`known_failure`)."""
        self._check_open()
        entry = {"checksum": checksum, "reason": str(reason), "by": __version__}
        failed = self._failed.setdefault(check_modality(modality), {})
        key = resolve_path(path)
        if failed.get(key) != entry:
            failed[key] = entry
            self._failures_changed = True

    def _forget_failure(self, modality: str, resolved: str) -> None:
        if self._failed.get(modality, {}).pop(resolved, None) is not None:
            self._failures_changed = True

    # ---------------------------------------------------------------- changes
    def add_item(
        self,
        modality: str,
        path: str | os.PathLike[str],
        meta: ItemMeta,
        windows: Sequence[tuple[float, float]],
        vectors: object,
    ) -> Item:
        """Catalogue ``path`` with one vector per window; replaces an earlier entry of the path.

        ``windows``: W pairs ``(start, end)`` in seconds, 0 ≤ start ≤ end.
        ``vectors``: (W, dim) embeddings, normalised here. Bad input raises
        (:class:`InvalidVectorsError` for NaN/inf/zero/wrong-shape vectors, naming the
        item) before anything changes, so the caller may skip the item and go on.
        """
        self._check_open()
        check_modality(modality)
        what = f"vectors of {modality} item {os.fspath(path)!r}"
        spans = _check_windows(windows, what)
        array = np.asarray(vectors)
        if array.ndim != 2 or array.shape[0] != len(spans):
            raise InvalidVectorsError(
                f"{what}: expected shape ({len(spans)}, {self.dim}) for {len(spans)} window(s), got {array.shape}"
            )
        rows = as_unit_rows(array, self.dim, what=what)
        _check_meta(meta, what)
        item, vector_ids, replaced = self._catalog.add_item(
            modality, path, meta, spans, replace=True
        )
        for old, old_ids in replaced:
            self._forget(old, old_ids)
        self._pending[modality][item.item_id] = (vector_ids, rows)
        self._touched.add(modality)
        self.added.append(item)
        self._forget_failure(modality, item.resolved_path)
        return item

    def remove_item(self, path: str | os.PathLike[str], modality: str | None = None) -> list[Item]:
        """Drop ``path`` (of one modality, or all); returns the items removed (none if unknown)."""
        self._check_open()
        items = self._catalog.items_by_path(path, modality)
        for item in items:
            self._forget(item, self._catalog.delete_item(item.item_id))
        return items

    def remove_missing(
        self, existing_paths: Iterable[str | os.PathLike[str]], modality: str | None = None
    ) -> list[Item]:
        """Drop every item (of ``modality``, or all) whose path is not in ``existing_paths``."""
        self._check_open()
        keep = {resolve_path(p) for p in existing_paths}
        for kind in [modality] if modality else list(MODALITIES):
            for resolved in [r for r in self._failed.get(kind, {}) if r not in keep]:
                self._forget_failure(kind, resolved)
        gone = [item for item in self._catalog.items(modality) if item.resolved_path not in keep]
        for item in gone:
            self._forget(item, self._catalog.delete_item(item.item_id))
        return gone

    def reindex(self, modality: str | None = None) -> None:
        """Re-choose ``modality``'s (or both) index kind at commit even if nothing changed.

        With ``params`` passed to ``begin_update`` this switches an existing store to
        another kind (e.g. flat → hnsw), rebuilding from the stored vectors; an HNSW
        graph with tombstones is compacted. IVF-PQ cannot be converted (lossy codes).
        """
        self._check_open()
        chosen = [check_modality(modality)] if modality else list(MODALITIES)
        self._touched.update(chosen)
        self._reindex.update(chosen)

    def _forget(self, item: Item, vector_ids: np.ndarray) -> None:
        """Drop a deleted item's vectors: from this update's buffer, else from the base index."""
        pending = self._pending[item.modality]
        if item.item_id in pending:
            del pending[item.item_id]
            self.added = [a for a in self.added if a.item_id != item.item_id]
        else:
            self._removed[item.modality].append(vector_ids)
            self.removed.append(item)
        self._touched.add(item.modality)

    # ---------------------------------------------------------------- publishing
    def commit(self) -> StoreInfo:
        """Write the next version, publish it, delete versions older than the previous one."""
        self._check_open()
        if not self._has_changes():
            return self._keep_current()
        try:
            kinds = {}
            for modality in MODALITIES:
                kinds[modality] = self._write_modality(modality)
            self._catalog.set_meta(
                **{FAILED_KEY: self._failed},
                store_format=STORE_FORMAT,
                fingerprint=self.fingerprint,
                dim=self.dim,
                crossmodal_version=__version__,
                index_kinds=kinds,
                index_params=self.params.to_dict(),
                updated=now_iso(),
                version=self._name,
            )
            self._catalog.commit()
            counts = {
                m: (self._catalog.count_items(m), self._catalog.count_windows(m))
                for m in MODALITIES
            }
            meta = self._catalog.all_meta()
            self._catalog.close()
            write_manifest(
                self._staging,
                {
                    "store_format": STORE_FORMAT,
                    "version": self._name,
                    "fingerprint": self.fingerprint,
                },
                known=self._known,
            )
            final = self.root / VERSIONS / self._name
            os.rename(self._staging, final)
            fsync_path(final.parent)
            write_pointer(self.root, Pointer(STORE_FORMAT, self._name, self._previous, now_iso()))
        except (OSError, sqlite3.Error) as err:
            self.abort()
            raise StoreError(self._publish_failure(err)) from err
        except BaseException:
            self.abort()
            raise
        self._done = True
        self.published = True
        self._remove_leftovers(keep={self._name, self._previous}, numbered=True)
        self._lock.release()
        log.info(
            "published %s version %s: music %d items / %d windows, video %d items / %d windows",
            self.root,
            self._name,
            *counts["music"],
            *counts["video"],
        )
        return StoreInfo(
            root=str(self.root),
            version=self._name,
            store_format=STORE_FORMAT,
            fingerprint=self.fingerprint,
            dim=self.dim,
            crossmodal_version=__version__,
            index_kinds=kinds,
            items={m: c[0] for m, c in counts.items()},
            windows={m: c[1] for m, c in counts.items()},
            created=str(meta.get("created", "")),
            updated=str(meta.get("updated", "")),
        )

    def _has_changes(self) -> bool:
        """Whether committing would publish anything the current version lacks."""
        if self._base is None or self._touched or self._failures_changed:
            return True
        return self._catalog.get_meta("index_params") != self.params.to_dict()

    def _keep_current(self) -> StoreInfo:
        """Commit of an update that changed nothing: no new version, the lock released."""
        meta = self._catalog.all_meta()
        counts = {
            m: (self._catalog.count_items(m), self._catalog.count_windows(m)) for m in MODALITIES
        }
        self._done = True
        self._catalog.close()
        shutil.rmtree(self._staging, ignore_errors=True)
        self._lock.release()
        log.info("nothing changed: %s stays at version %s", self.root, self._previous)
        return StoreInfo(
            root=str(self.root),
            version=str(self._previous),
            store_format=STORE_FORMAT,
            fingerprint=self.fingerprint,
            dim=self.dim,
            crossmodal_version=str(meta.get("crossmodal_version", "")),
            index_kinds=dict(meta.get("index_kinds", {})),
            items={m: c[0] for m, c in counts.items()},
            windows={m: c[1] for m, c in counts.items()},
            created=str(meta.get("created", "")),
            updated=str(meta.get("updated", "")),
        )

    def _publish_failure(self, err: BaseException) -> str:
        if isinstance(err, OSError):
            where = f" {err.filename}" if err.filename else ""
            reason = f"cannot write{where}: {err.strerror or err}"
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                reason += "; free some space"
        else:
            reason = f"SQLite failed ({err})"
            if "full" in str(err):
                reason += "; free some space"
        current = (
            f"version {self._previous} is still the current one"
            if self._previous
            else ("nothing was published")
        )
        return (
            f"could not publish version {self._name} of {self.root}: {reason}. The update was "
            f"discarded and {current}; run the command again"
        )

    def abort(self) -> None:
        """Discard this update: the current version stays as it was; the lock is released."""
        if self._done:
            return
        self._done = True
        self._catalog.close()
        shutil.rmtree(self._staging, ignore_errors=True)
        self._lock.release()
        log.info(
            "update of %s aborted; version %s is unchanged", self.root, self._previous or "(none)"
        )

    def _base_index(self, modality: str) -> VectorIndex | None:
        if modality not in self._indexes:
            self._indexes[modality] = (
                VectorIndex.load(self._base_dir / modality) if self._base_dir is not None else None
            )
        return self._indexes[modality]

    def _write_modality(self, modality: str) -> str:
        """Bring ``modality``'s index up to date in the staging folder; returns its kind."""
        if modality not in self._touched and self._base_dir is not None:
            return _link_index_files(self._base_dir, self._staging, modality, self._known)
        base = self._base_index(modality)
        if base is not None and self._removed[modality]:
            base.remove(np.concatenate(self._removed[modality]))
        pending = list(self._pending[modality].values())
        # The buffers are concatenated below; dropping them now halves the peak memory.
        self._pending[modality] = {}
        new_ids = np.concatenate([ids for ids, _ in pending]) if pending else np.zeros(0, np.int64)
        new_rows = (
            np.concatenate([rows for _, rows in pending])
            if pending
            else np.zeros((0, self.dim), np.float32)
        )
        total = len(new_ids) + (len(base) if base is not None else 0)
        kind = self._target_kind(modality, base.kind if base is not None else None, total)
        # The vectors of a fresh build, for tuning (an updated index reads its own back).
        all_rows: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        if base is not None and base.kind == kind:
            index = base
            index._add_rows(new_rows, new_ids)
            if index.needs_compaction() or (modality in self._reindex and index.num_tombstones):
                log.info(
                    "rebuilding the %s HNSW graph without its %d removed vectors",
                    modality,
                    index.num_tombstones,
                )
                index = index.rebuilt(self.params.with_kind(kind))
        else:
            if base is not None and len(base):
                log.info(
                    "converting the %s index from %s to %s (%d vectors)",
                    modality,
                    base.kind,
                    kind,
                    total,
                )
                old_ids, old_rows = base.vectors()
                # Free the old index before building the new one (peak memory at 1M+ vectors).
                self._indexes[modality] = base = None
                if len(new_ids):
                    old_ids = np.concatenate([old_ids, new_ids])
                    old_rows = np.concatenate([old_rows, new_rows])
                new_ids, new_rows = old_ids, old_rows
            index = VectorIndex._build_rows(
                new_rows, new_ids, self.params.with_kind(kind), self.dim
            )
            all_rows = (new_rows, new_ids)
        table = self._catalog.window_table(modality)
        expected = table.vector_ids
        if not np.array_equal(index.ids(), expected):
            raise StoreError(
                f"internal error: the {modality} index ({len(index)} vectors) does not match the "
                f"catalog ({len(expected)} windows); nothing was published"
            )
        tune_index(index, table, *all_rows)
        build_item_stage(index, table, self._staging / modality, *all_rows)
        index.save(self._staging / modality)
        return index.kind

    def _target_kind(self, modality: str, current: str | None, n: int) -> str:
        """The kind ``modality``'s index should have with ``n`` vectors (see IndexParams)."""
        policy = self.params
        if n == 0:
            return "flat" if current in (None, "flat", "hnsw") else current
        if policy.kind != "auto":
            kind = policy.kind
        else:
            kind = "flat" if n < policy.flat_max else policy.large_kind
            # Hysteresis: a large index goes back to flat only well below the threshold.
            if current in ("hnsw", "ivfpq") and kind == "flat" and n >= policy.flat_max // 2:
                kind = current
        if current == "ivfpq" and kind != "ivfpq":
            log.info(
                "keeping the %s index as ivfpq: its original vectors cannot be recovered", modality
            )
            return "ivfpq"
        if kind == "ivfpq" and n < policy.min_vectors_for_ivfpq(n):
            if policy.kind == "auto":
                return "flat" if current != "hnsw" else "hnsw"
            raise TooFewVectorsError(
                f"the {modality} index would hold {n} vectors, too few to train ivfpq "
                f"(needs {policy.min_vectors_for_ivfpq(n)}); use index kind 'auto' or 'flat'"
            )
        return kind

    def _remove_leftovers(self, keep: set[str | None], *, numbered: bool) -> None:
        """Delete staging folders of killed writers and (``numbered``) versions not in ``keep``.

        Only called while holding the writer lock, so nothing deleted is being written.
        """
        # Temporary files of killed writes: CURRENT's and the model copies'.
        removed = remove_temp_files_of(self.root / POINTER)
        models = self.root / MODELS_DIR
        if models.is_dir():
            for stale in models.glob(".*.tmp.pt"):
                stale.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.debug(
                "deleted %d temporary file(s) left by killed writers in %s", removed, self.root
            )
        folder = self.root / VERSIONS
        for name in sorted(os.listdir(folder)):
            stale_staging = name.startswith(STAGING_PREFIX)
            old_version = numbered and parse_version(name) is not None and name not in keep
            if not (stale_staging or old_version):
                continue
            try:
                shutil.rmtree(folder / name)
                log.debug("deleted %s", folder / name)
            except OSError as err:
                log.warning("could not delete %s: %s", folder / name, err)


def check_base_compatible(
    root: Path, catalog: Catalog, fingerprint: str, dim: int, params: IndexParams | None
) -> None:
    """Refuse to extend a store built by another model or with another dimension."""
    meta = catalog.all_meta()
    built_by, built_dim = meta.get("fingerprint"), meta.get("dim")
    if built_by != fingerprint or built_dim != dim:
        raise IncompatibleStoreError(
            f"{root} was built by model {built_by} (embedding dim {built_dim}, crossmodal "
            f"{meta.get('crossmodal_version')}, version {meta.get('version')}); this model is "
            f"{fingerprint} (dim {dim}). Use the checkpoint that built it, or rebuild the index with "
            "this model (`crossmodal index ... --rebuild`; API: begin_update(..., rebuild=True)), "
            "which starts it empty"
        )
    kinds = meta.get("index_kinds", {})
    if params is not None and params.kind not in ("auto", "ivfpq"):
        stuck = [m for m, kind in kinds.items() if kind == "ivfpq"]
        if stuck:
            raise IncompatibleStoreError(
                f"{root}: the {', '.join(stuck)} index is ivfpq, which keeps only compressed codes "
                f"and cannot be converted to {params.kind}; rebuild the index with --rebuild"
            )


def _check_windows(windows: Sequence[tuple[float, float]], what: str) -> list[tuple[float, float]]:
    try:
        spans = [(float(start), float(end)) for start, end in windows]
    except (TypeError, ValueError) as err:
        raise InvalidVectorsError(
            f"{what}: windows must be (start, end) pairs of seconds ({err})"
        ) from err
    if not spans:
        raise InvalidVectorsError(f"{what}: an item needs at least one window")
    for i, (start, end) in enumerate(spans):
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise InvalidVectorsError(
                f"{what}: window {i} ({start}, {end}) is not 0 <= start <= end"
            )
    return spans


def _check_meta(meta: ItemMeta, what: str) -> None:
    if not isinstance(meta, ItemMeta):
        raise TypeError(f"{what}: meta must be an ItemMeta, got {type(meta).__name__}")
    if meta.size < 0 or not math.isfinite(meta.mtime) or not meta.checksum:
        raise ValueError(f"{what}: meta needs size >= 0, a finite mtime and a checksum")
    if meta.duration is not None and not (math.isfinite(meta.duration) and meta.duration >= 0):
        raise ValueError(f"{what}: duration must be a finite number of seconds >= 0")


def _link_index_files(
    base_dir: Path, staging: Path, modality: str, known: dict[str, dict[str, Any]]
) -> str:
    """Reuse an untouched modality's files: hard links (published files never change).
    Their manifest entries (verified when the update began) go into ``known``."""
    manifest = check_manifest(base_dir)
    for name, entry in manifest["files"].items():
        if name.startswith(f"{modality}."):
            try:
                os.link(base_dir / name, staging / name)
            except OSError:
                shutil.copy2(base_dir / name, staging / name)
            known[name] = entry
    return str(VectorIndex.load_header(base_dir / modality)["kind"])
