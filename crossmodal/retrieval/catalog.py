"""The SQLite catalog: items, their embedded windows (vector ids) and the store's metadata.

Schema (``CATALOG_SCHEMA_VERSION`` 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)            -- JSON values
    items(item_id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
          modality, path, resolved_path, size, mtime, checksum,
          duration, label, extra JSON, added_at,
          UNIQUE(modality, resolved_path))
    windows(vector_id INTEGER PRIMARY KEY,            -- the id the faiss index stores
            item_id REFERENCES items ON DELETE CASCADE,
            modality, start_s, end_s)

Vector ids come from the ``next_vector_id`` counter in ``meta``, so they only grow and
are unique across both modalities, even after deletions. A published catalog is opened
read-only with ``immutable=1`` (no locks, no journal files): published versions never
change. A writable catalog belongs to one updater, is written in one transaction and
is not fsynced by SQLite: the store fsyncs it before publishing the version.

A catalog file is not trusted: on open, ``meta``, ``items`` and ``windows`` must be real
tables with their columns, and the file may hold no views or triggers (a view named
``meta`` could make every reader run an endless query); ``trusted_schema`` is off; every
read runs under a time budget (:attr:`Catalog.query_seconds`, enforced by a SQLite
progress handler); and damaged pages or malformed rows raise :class:`StoreCorruptError`
naming the file, never a raw ``sqlite3`` or JSON error.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np

from crossmodal.retrieval.checksum import SIGNATURE_PREFIX
from crossmodal.retrieval.errors import StoreCorruptError
from crossmodal.retrieval.records import Item, ItemMeta, Window, check_modality

CATALOG_SCHEMA_VERSION = 1

# SQLite limits host parameters per statement (999 in old builds): chunk IN (...) lists.
_MAX_PARAMS = 900

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    modality TEXT NOT NULL CHECK (modality IN ('music', 'video')),
    path TEXT NOT NULL,
    resolved_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    checksum TEXT NOT NULL,
    duration REAL,
    label TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    added_at TEXT NOT NULL,
    UNIQUE (modality, resolved_path)
);
CREATE TABLE windows (
    vector_id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(item_id) ON DELETE CASCADE,
    modality TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    CHECK (end_s >= start_s)
);
CREATE INDEX windows_by_item ON windows(item_id);
CREATE INDEX windows_by_modality ON windows(modality, vector_id);
"""

_ITEM_COLUMNS = "item_id, modality, path, resolved_path, size, mtime, checksum, duration, label, extra, added_at"
# The tables a catalog must have as real tables, with (at least) these columns.
_REQUIRED_COLUMNS = {
    "meta": {"key", "value"},
    "items": {c.strip() for c in _ITEM_COLUMNS.split(",")},
    "windows": {"vector_id", "item_id", "modality", "start_s", "end_s"},
}
# The progress handler runs every this many SQLite VM instructions (~1 ms of work).
_PROGRESS_STEPS = 10_000


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_path(path: str | os.PathLike[str]) -> str:
    """The key a path is catalogued under: absolute, symlinks resolved (need not exist)."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


class WindowTable:
    """The windows of one modality as sorted numpy arrays, for vector-id → item lookups.

    ``vector_ids`` (sorted), ``item_ids``, ``starts``, ``ends``: all (N,).
    """

    def __init__(
        self, vector_ids: np.ndarray, item_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> None:
        self.vector_ids = vector_ids
        self.item_ids = item_ids
        self.starts = starts
        self.ends = ends

    def __len__(self) -> int:
        return len(self.vector_ids)

    def positions(self, vector_ids: np.ndarray) -> np.ndarray:
        """Row of each id in this table, -1 where the id is unknown (any shape)."""
        if len(self.vector_ids) == 0:
            return np.full(np.shape(vector_ids), -1, dtype=np.int64)
        pos = np.searchsorted(self.vector_ids, vector_ids)
        pos = np.minimum(pos, len(self.vector_ids) - 1)
        return np.where(self.vector_ids[pos] == vector_ids, pos, -1)


class AddedItem(NamedTuple):
    """Result of :meth:`Catalog.add_item`: the item, its vector ids, what it replaced."""

    item: Item
    vector_ids: np.ndarray
    replaced: list[tuple[Item, np.ndarray]]


class Catalog:
    """Items and windows of a store in one SQLite file. Open with :meth:`create` or :meth:`open`."""

    # Longest a single read may run (seconds) before it is aborted as a damaged or crafted
    # catalog; generous: reading every window of a 10M-window store takes a few seconds.
    query_seconds: float = 120.0

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly
        # Readers may share one snapshot between threads; sqlite3 objects are not thread-safe.
        self._lock = threading.RLock()
        self._closed = False
        # Writer only: the vector-id counter, kept in memory and stored in meta on commit.
        self._next_vector_id = 0
        self._deadline = math.inf
        conn.set_progress_handler(self._over_budget, _PROGRESS_STEPS)
        # Functions named in a crafted schema (views, triggers, defaults) must not run.
        conn.execute("PRAGMA trusted_schema=OFF")

    def _over_budget(self) -> int:
        return int(time.monotonic() > self._deadline)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read, under the time budget; SQLite errors become StoreCorruptError."""
        with self._lock:
            self._deadline = time.monotonic() + self.query_seconds
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as err:
                raise self._damaged(err) from err
            finally:
                self._deadline = math.inf

    def _damaged(self, err: BaseException) -> StoreCorruptError:
        if isinstance(err, sqlite3.OperationalError) and "interrupted" in str(err):
            reason = f"a query ran longer than {self.query_seconds:g} s"
        else:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return StoreCorruptError(
            f"catalog {self.path} is damaged or not a crossmodal catalog ({reason}); "
            "rebuild the index (crossmodal index ... --rebuild)"
        )

    # ---------------------------------------------------------------- opening
    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Catalog:
        """Create a new, empty catalog file (fails if ``path`` exists)."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"catalog already exists: {path}")
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        catalog = cls(conn, path, readonly=False)
        catalog._configure_writer()
        conn.executescript(_SCHEMA)
        catalog._begin()
        catalog.set_meta(schema=CATALOG_SCHEMA_VERSION, next_vector_id=0)
        return catalog

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = True) -> Catalog:
        """Open an existing catalog; damaged or foreign files raise :class:`StoreCorruptError`."""
        path = Path(path)
        if not path.is_file():
            raise StoreCorruptError(f"catalog file is missing: {path}")
        try:
            if readonly:
                uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:  # e.g. deleted by a writer's cleanup meanwhile
            raise StoreCorruptError(f"cannot open catalog {path}: {err}") from err
        catalog = cls(conn, path, readonly)
        try:
            catalog._check_tables()
            schema = catalog.get_meta("schema")
            if schema != CATALOG_SCHEMA_VERSION:
                raise StoreCorruptError(
                    f"catalog {path} has schema {schema!r}; this crossmodal reads schema "
                    f"{CATALOG_SCHEMA_VERSION}: rebuild the index"
                )
            if not readonly:
                catalog._configure_writer()
                catalog._begin()
                counter = catalog.get_meta("next_vector_id")
                if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
                    raise StoreCorruptError(
                        f"catalog {path}: next_vector_id is {counter!r}; rebuild the index"
                    )
                catalog._next_vector_id = counter
        except BaseException:
            conn.close()
            raise
        return catalog

    def _check_tables(self) -> None:
        """Refuse files whose schema is not ours: views, triggers, missing tables/columns."""
        entries = self._query("SELECT type, name FROM sqlite_master")
        foreign = sorted(
            f"{kind} {name!r}" for kind, name in entries if kind in ("view", "trigger")
        )
        if foreign:
            raise StoreCorruptError(
                f"catalog {self.path} holds {', '.join(foreign[:3])}: a crossmodal catalog has "
                "only tables and indexes; rebuild the index (and do not open files of unknown origin)"
            )
        tables = {name for kind, name in entries if kind == "table"}
        for table, columns in _REQUIRED_COLUMNS.items():
            have = (
                {row[1] for row in self._query(f"PRAGMA table_info({table})")}
                if table in tables
                else set()
            )
            if not columns <= have:
                raise StoreCorruptError(
                    f"catalog {self.path} is not a crossmodal catalog (table {table!r} "
                    f"{'lacks ' + ', '.join(sorted(columns - have)) if have else 'is missing'}); "
                    "rebuild the index"
                )

    def _configure_writer(self) -> None:
        # One writer, private file: a rollback journal (no WAL side files to copy) is enough,
        # and no fsync per commit: a staging catalog only matters once the store fsyncs and
        # publishes it, and a crash before that discards it anyway.
        self._conn.execute("PRAGMA journal_mode=DELETE")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute("PRAGMA foreign_keys=ON")

    def _begin(self) -> None:
        self._conn.execute("BEGIN")

    def commit(self) -> None:
        """Commit the writer's transaction (and start the next one)."""
        self._require_writer()
        with self._lock:
            self.set_meta(next_vector_id=self._next_vector_id)
            self._conn.execute("COMMIT")
            self._begin()

    def close(self) -> None:
        """Close the connection (idempotent); a writer's uncommitted changes are rolled back."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self.readonly and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._conn.close()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """All-or-nothing block inside the writer's transaction (nestable)."""
        self._require_writer()
        with self._lock:
            self._conn.execute("SAVEPOINT item")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK TO item")
                self._conn.execute("RELEASE item")
                raise
            self._conn.execute("RELEASE item")

    def _require_writer(self) -> None:
        if self.readonly:
            raise PermissionError(f"catalog {self.path} is open read-only")

    # ---------------------------------------------------------------- metadata
    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return default if not rows else self._json(rows[0][0], f"meta {key!r}")

    def all_meta(self) -> dict[str, Any]:
        rows = self._query("SELECT key, value FROM meta")
        return {str(key): self._json(value, f"meta {key!r}") for key, value in rows}

    def _json(self, text: Any, what: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError, RecursionError) as err:
            raise StoreCorruptError(
                f"catalog {self.path}: {what} is not valid JSON ({type(err).__name__}); "
                "rebuild the index"
            ) from err

    def set_meta(self, **values: Any) -> None:
        """Set metadata entries (JSON-serialisable values)."""
        self._require_writer()
        with self._lock:
            self._conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(key, json.dumps(value)) for key, value in values.items()],
            )

    # ---------------------------------------------------------------- writing
    def add_item(
        self,
        modality: str,
        path: str | os.PathLike[str],
        meta: ItemMeta,
        windows: Sequence[tuple[float, float]],
        *,
        replace: bool = False,
    ) -> AddedItem:
        """Insert an item and its windows, all or nothing.

        Returns the new item, its vector ids (W,) and, with ``replace=True``, the items
        previously catalogued under the same resolved path and modality (deleted here)
        with their freed vector ids. Without ``replace`` such a path raises
        ``sqlite3.IntegrityError``.
        """
        self._require_writer()
        check_modality(modality)
        resolved = resolve_path(path)
        extra = json.dumps(meta.extra or {}, sort_keys=True)
        added_at = now_iso()
        first = self._next_vector_id
        vector_ids = np.arange(first, first + len(windows), dtype=np.int64)
        with self._lock, self.savepoint():
            replaced = []
            if replace:
                for old in self._items_by_resolved(resolved, modality):
                    replaced.append((old, self.delete_item(old.item_id)))
            cursor = self._conn.execute(
                "INSERT INTO items(modality, path, resolved_path, size, mtime, checksum, duration, "
                "label, extra, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    modality,
                    os.fspath(path),
                    resolved,
                    int(meta.size),
                    float(meta.mtime),
                    meta.checksum,
                    None if meta.duration is None else float(meta.duration),
                    meta.label,
                    extra,
                    added_at,
                ),
            )
            item_id = int(cursor.lastrowid)
            self._conn.executemany(
                "INSERT INTO windows(vector_id, item_id, modality, start_s, end_s) VALUES (?, ?, ?, ?, ?)",
                [
                    (vid, item_id, modality, float(start), float(end))
                    for vid, (start, end) in zip(vector_ids.tolist(), windows, strict=True)
                ],
            )
        self._next_vector_id = first + len(windows)
        item = Item(
            item_id=item_id,
            modality=modality,
            path=os.fspath(path),
            resolved_path=resolved,
            size=int(meta.size),
            mtime=float(meta.mtime),
            checksum=meta.checksum,
            duration=meta.duration,
            label=meta.label,
            extra=json.loads(extra),
            added_at=added_at,
        )
        return AddedItem(item, vector_ids, replaced)

    def delete_item(self, item_id: int) -> np.ndarray:
        """Delete an item and its windows; returns the freed vector ids (empty if unknown)."""
        self._require_writer()
        with self._lock, self.savepoint():
            vector_ids = self.vector_ids_of(item_id)
            self._conn.execute("DELETE FROM windows WHERE item_id = ?", (int(item_id),))
            self._conn.execute("DELETE FROM items WHERE item_id = ?", (int(item_id),))
        return vector_ids

    # ---------------------------------------------------------------- queries
    def items_by_path(
        self, path: str | os.PathLike[str], modality: str | None = None
    ) -> list[Item]:
        """Items catalogued under ``path`` (resolved), one per modality at most."""
        return self._items_by_resolved(resolve_path(path), modality)

    def _items_by_resolved(self, resolved: str, modality: str | None) -> list[Item]:
        sql = f"SELECT {_ITEM_COLUMNS} FROM items WHERE resolved_path = ?"
        args: list[Any] = [resolved]
        if modality is not None:
            sql += " AND modality = ?"
            args.append(check_modality(modality))
        return [self._item(row) for row in self._query(sql + " ORDER BY modality", args)]

    def is_unchanged(
        self,
        path: str | os.PathLike[str],
        size: int,
        mtime: float,
        checksum: str | None,
        modality: str | None = None,
    ) -> bool:
        """True when ``path`` is catalogued with this size, mtime and checksum.

        ``checksum=None`` compares size and mtime only. An item catalogued before content
        signatures (its checksum a full ``sha256:``) is compared by size and mtime too, so
        an upgrade does not re-embed a whole library; it gets a signature when re-added.
        With ``modality=None`` every catalogued modality of the path must match.
        """
        items = self.items_by_path(path, modality)
        return bool(items) and all(
            item.size == int(size)
            and item.mtime == float(mtime)
            and (
                checksum is None
                or item.checksum == checksum
                or (
                    checksum.startswith(SIGNATURE_PREFIX)
                    and not item.checksum.startswith(SIGNATURE_PREFIX)
                )
            )
            for item in items
        )

    def items(self, modality: str | None = None) -> list[Item]:
        """All items (of one modality), by item id."""
        sql = f"SELECT {_ITEM_COLUMNS} FROM items"
        args: tuple[Any, ...] = ()
        if modality is not None:
            sql += " WHERE modality = ?"
            args = (check_modality(modality),)
        return [self._item(row) for row in self._query(sql + " ORDER BY item_id", args)]

    def items_by_ids(self, item_ids: Iterable[int]) -> dict[int, Item]:
        """Items for ``item_ids`` (unknown ids are absent from the result)."""
        wanted = sorted({int(i) for i in item_ids})
        found: dict[int, Item] = {}
        for lo in range(0, len(wanted), _MAX_PARAMS):
            chunk = wanted[lo : lo + _MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            for row in self._query(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE item_id IN ({marks})", chunk
            ):
                item = self._item(row)
                found[item.item_id] = item
        return found

    def vector_ids_of(self, item_id: int) -> np.ndarray:
        """Vector ids of one item's windows, ascending."""
        rows = self._query(
            "SELECT vector_id FROM windows WHERE item_id = ? ORDER BY vector_id", (int(item_id),)
        )
        return self._array([r[0] for r in rows], np.int64, "window vector ids")

    def windows_for(self, vector_ids: Iterable[int]) -> list[Window]:
        """Windows of the given vector ids, in the order asked (unknown ids are skipped)."""
        wanted = [int(v) for v in vector_ids]
        found: dict[int, Window] = {}
        unique = sorted(set(wanted))
        for lo in range(0, len(unique), _MAX_PARAMS):
            chunk = unique[lo : lo + _MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            for vid, item_id, start, end in self._query(
                f"SELECT vector_id, item_id, start_s, end_s FROM windows WHERE vector_id IN ({marks})",
                chunk,
            ):
                found[vid] = Window(vid, item_id, start, end)
        return [found[v] for v in wanted if v in found]

    def window_table(self, modality: str) -> WindowTable:
        """All windows of ``modality`` as a :class:`WindowTable` (sorted by vector id)."""
        check_modality(modality)
        rows = self._query(
            "SELECT vector_id, item_id, start_s, end_s FROM windows WHERE modality = ? "
            "ORDER BY vector_id",
            (modality,),
        )
        if not rows:
            empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
            return WindowTable(empty_i, empty_i.copy(), empty_f, empty_f.copy())
        vids, item_ids, starts, ends = zip(*rows, strict=True)
        what = f"{modality} windows"
        table = WindowTable(
            self._array(vids, np.int64, what),
            self._array(item_ids, np.int64, what),
            self._array(starts, np.float64, what),
            self._array(ends, np.float64, what),
        )
        if not (
            np.isfinite(table.starts).all()
            and np.isfinite(table.ends).all()
            and (table.ends >= table.starts).all()
            and (np.diff(table.vector_ids) > 0).all()
        ):
            raise StoreCorruptError(
                f"catalog {self.path}: {what} have non-finite or reversed times or repeated "
                "ids; rebuild the index"
            )
        return table

    def _array(self, values: Sequence[Any], dtype: type, what: str) -> np.ndarray:
        """``values`` as a numpy array of ``dtype``; text or blobs in number columns raise."""
        if any(isinstance(v, str | bytes) or v is None for v in values):
            raise StoreCorruptError(
                f"catalog {self.path}: {what} hold values that are not numbers; rebuild the index"
            )
        try:
            return np.array(values, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as err:
            raise StoreCorruptError(
                f"catalog {self.path}: {what} are malformed ({err}); rebuild the index"
            ) from err

    def count_items(self, modality: str | None = None) -> int:
        return self._count("items", modality)

    def count_windows(self, modality: str | None = None) -> int:
        return self._count("windows", modality)

    def _count(self, table: str, modality: str | None) -> int:
        sql = f"SELECT COUNT(*) FROM {table}"
        args: tuple[Any, ...] = ()
        if modality is not None:
            sql += " WHERE modality = ?"
            args = (check_modality(modality),)
        return int(self._query(sql, args)[0][0])

    def _item(self, row: Sequence[Any]) -> Item:
        """An :class:`Item` from a row, every column's type checked (a crafted or damaged
        catalog could hold anything)."""
        item_id, modality, path, resolved, size, mtime, checksum, duration, label, extra, added = (
            row
        )
        extra_value = self._json(extra, f"item {item_id!r} extra") if extra else {}
        ok = (
            _is_int(item_id)
            and modality in ("music", "video")
            and all(isinstance(v, str) for v in (path, resolved, checksum))
            and _is_int(size)
            and isinstance(mtime, int | float)
            and (duration is None or isinstance(duration, int | float))
            and (label is None or isinstance(label, str))
            and isinstance(extra_value, dict)
            and (added is None or isinstance(added, str))
        )
        if not ok:
            raise StoreCorruptError(
                f"catalog {self.path}: item row {item_id!r} is malformed; rebuild the index"
            )
        return Item(
            item_id=int(item_id),
            modality=modality,
            path=path,
            resolved_path=resolved,
            size=int(size),
            mtime=float(mtime),
            checksum=checksum,
            duration=None if duration is None else float(duration),
            label=label,
            extra=extra_value,
            added_at=added or "",
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
