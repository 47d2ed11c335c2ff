"""IndexStore: an INDEX_DIR holding a faiss index per modality and the shared SQLite catalog.

Readers search the version CURRENT names (loaded into a :class:`StoreSnapshot`, so a
writer publishing meanwhile does not disturb them; :meth:`IndexStore.refresh` moves to
the newest). One writer at a time builds the next version with
:meth:`IndexStore.begin_update`; see :mod:`crossmodal.retrieval.layout` for the files.

Example::

    store = IndexStore(index_dir)
    with store.begin_update(fingerprint="model-abc", dim=256) as update:
        if update.needs_embedding(path, size, mtime, checksum, modality="music"):
            update.add_item("music", path, ItemMeta(size, mtime, checksum), windows, vectors)
    hits = IndexStore.open(index_dir, fingerprint="model-abc").search("music", query, k=10)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from crossmodal.retrieval.catalog import Catalog
from crossmodal.retrieval.errors import (
    IncompatibleStoreError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
)
from crossmodal.retrieval.index_params import IndexParams
from crossmodal.retrieval.layout import (
    CATALOG,
    LOCK,
    POINTER,
    VERSIONS,
    Pointer,
    check_manifest,
    read_pointer,
    version_numbers,
)
from crossmodal.retrieval.lock import WriterLock
from crossmodal.retrieval.records import MODALITIES, Hit, StoreInfo
from crossmodal.retrieval.snapshot import StoreSnapshot
from crossmodal.retrieval.updater import StoreUpdater, check_base_compatible

log = logging.getLogger(__name__)

# A reader racing two publishes can find its version deleted while loading it: retry.
_OPEN_ATTEMPTS = 5


class IndexStore:
    """Handle on an INDEX_DIR: search the published version, or update it.

    ``IndexStore(root)`` does no I/O; :meth:`open` loads the current version at once
    (and checks the model ``fingerprint`` when given), :meth:`search` loads it on first
    use. ``modalities`` limits which faiss indexes a reader loads.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fingerprint: str | None = None,
        modalities: tuple[str, ...] = MODALITIES,
    ) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.modalities = tuple(modalities)
        self._snapshot: StoreSnapshot | None = None

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        *,
        fingerprint: str | None = None,
        modalities: tuple[str, ...] = MODALITIES,
    ) -> IndexStore:
        """Open ``root`` for searching now: missing, damaged or foreign stores raise here."""
        store = cls(root, fingerprint=fingerprint, modalities=modalities)
        store.refresh()
        return store

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None

    # ---------------------------------------------------------------- reading
    def current_version(self) -> str | None:
        """The version CURRENT names now (None when nothing is published)."""
        pointer = read_pointer(self.root) if self.root.is_dir() else None
        return pointer.version if pointer else None

    @property
    def snapshot(self) -> StoreSnapshot:
        """The loaded version (loaded on first access)."""
        if self._snapshot is None:
            self.refresh()
        assert self._snapshot is not None
        return self._snapshot

    def refresh(self) -> bool:
        """Load the version CURRENT names if it is not the loaded one; True if it changed."""
        last_error: StoreError | None = None
        for _ in range(_OPEN_ATTEMPTS):
            pointer = self._pointer()
            if self._snapshot is not None and self._snapshot.version == pointer.version:
                return False
            try:
                snapshot = StoreSnapshot.load(self.root, pointer, self.modalities)
            except (StoreCorruptError, FileNotFoundError) as err:
                # Deleted under us by a writer's cleanup if CURRENT moved on; else really damaged.
                if read_pointer(self.root) == pointer:
                    if isinstance(err, FileNotFoundError):
                        raise StoreCorruptError(f"{self.root}: {err}") from err
                    raise
                last_error = StoreCorruptError(str(err))
                continue
            try:
                self._check_fingerprint(snapshot)
            except BaseException:
                snapshot.close()
                raise
            # The old snapshot is not closed here: another thread may still be searching it;
            # it closes when the last reference goes.
            self._snapshot = snapshot
            return True
        raise StoreError(
            f"{self.root} changed {_OPEN_ATTEMPTS} times while being opened: {last_error}"
        )

    def _pointer(self) -> Pointer:
        if not self.root.exists():
            raise StoreNotFoundError(
                f"no index at {self.root}: the folder does not exist (build one with `crossmodal index ... --out {self.root}`)"
            )
        if not self.root.is_dir():
            raise StoreNotFoundError(f"{self.root} is a file, not an index folder")
        pointer = read_pointer(self.root)
        if pointer is not None:
            return pointer
        if not any(self.root.iterdir()):
            raise StoreNotFoundError(
                f"{self.root} is empty: build an index with `crossmodal index ... --out {self.root}`"
            )
        if (self.root / VERSIONS).is_dir() or (self.root / LOCK).exists():
            raise StoreNotFoundError(
                f"{self.root} has no published version yet (the first indexing run is still going or was interrupted); "
                "run `crossmodal index` again"
            )
        raise StoreNotFoundError(
            f"{self.root} is not a crossmodal index (it has no {POINTER} file)"
        )

    def _check_fingerprint(self, snapshot: StoreSnapshot) -> None:
        if self.fingerprint is not None and snapshot.fingerprint != self.fingerprint:
            info = snapshot.info()
            raise IncompatibleStoreError(
                f"{self.root} was built by model {info.fingerprint} (embedding dim {info.dim}, crossmodal "
                f"{info.crossmodal_version}, version {info.version}); this model is {self.fingerprint}. "
                "Use the checkpoint that built it, or rebuild the index with this model "
                "(`crossmodal index ... --rebuild`)"
            )

    def info(self) -> StoreInfo:
        """Model, format, index kinds and counts of the loaded version."""
        return self.snapshot.info()

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
        """Top-``k`` items (``per_item``) or windows of ``modality`` per query; see :meth:`StoreSnapshot.search`."""
        return self.snapshot.search(
            modality, queries, k, per_item=per_item, nprobe=nprobe, ef_search=ef_search
        )

    # ---------------------------------------------------------------- writing
    def begin_update(
        self,
        fingerprint: str,
        dim: int,
        *,
        rebuild: bool = False,
        params: IndexParams | None = None,
    ) -> StoreUpdater:
        """Take the writer lock and start the next version (see :class:`StoreUpdater`).

        ``fingerprint``/``dim`` must match the store's unless ``rebuild`` (start empty;
        the current version stays readable until the commit). ``params``: index kind
        policy; default: the store's own, or :class:`IndexParams` for a new store.
        Raises :class:`StoreLockedError` while another process writes.
        """
        if not fingerprint:
            raise ValueError("fingerprint must be a non-empty string identifying the model")
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self._prepare_root()
        lock = WriterLock(self.root / LOCK)
        lock.acquire()
        try:
            try:
                current = read_pointer(self.root)
            except (StoreCorruptError, IncompatibleStoreError):
                if not rebuild:
                    raise
                current = None
            base = None if rebuild else current
            if base is not None:
                # The next version starts as a copy of this one: never copy damage forward.
                check_manifest(self.root / VERSIONS / base.version)
                base_catalog = Catalog.open(
                    self.root / VERSIONS / base.version / CATALOG, readonly=True
                )
                try:
                    check_base_compatible(self.root, base_catalog, fingerprint, int(dim), params)
                    if params is None:
                        stored = base_catalog.get_meta("index_params")
                        params = IndexParams.from_dict(stored) if stored else None
                finally:
                    base_catalog.close()
            top = max([*version_numbers(self.root), int(current.version) if current else 0])
            updater = StoreUpdater(
                self.root,
                lock,
                base,
                current.version if current else None,
                top + 1,
                fingerprint,
                int(dim),
                params or IndexParams(),
            )
        except BaseException:
            lock.release()
            raise
        if rebuild:
            log.info(
                "rebuilding %s from empty (version %s stays readable until the commit)",
                self.root,
                current.version if current else "none",
            )
        return updater

    def _prepare_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root} is a file, not an index folder")
        if self.root.is_dir() and any(self.root.iterdir()):
            known = {POINTER, LOCK, VERSIONS}
            if not any((self.root / name).exists() for name in known):
                raise StoreError(
                    f"{self.root} is not empty and is not a crossmodal index; choose a new or empty folder"
                )
        (self.root / VERSIONS).mkdir(parents=True, exist_ok=True)
