"""What the web app holds between requests: the index (one version per request), the
uploaded queries and dubbed files (temporary, removed after use), and the limits."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crossmodal.errors import CrossmodalError

if TYPE_CHECKING:
    from crossmodal.retrieval.recommender import Match, Recommender
    from crossmodal.retrieval.records import Item, StoreInfo


class UserError(CrossmodalError):
    """A problem the page shows to the user in one sentence (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Settings:
    """Limits and defaults of a server (``crossmodal serve`` flags)."""

    index_dir: Path
    k: int = 5
    max_upload_mb: float = 200.0
    max_seconds: float = 600.0
    keep_queries: int = 16  # uploads kept for dubbing; the oldest is removed beyond this
    query_ttl_s: float = 1800.0
    device: str = "cpu"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass
class Library:
    """One published version of the index: its recommender and its catalog by id/path."""

    version: str
    recommender: Recommender
    info: StoreInfo
    items: dict[str, dict[int, Item]]
    by_path: dict[tuple[str, str], Item]

    @classmethod
    def load(cls, recommender: Recommender) -> Library:
        snapshot = recommender.store.snapshot
        items: dict[str, dict[int, Item]] = {}
        by_path: dict[tuple[str, str], Item] = {}
        for modality in snapshot.modalities:
            items[modality] = {item.item_id: item for item in snapshot.items(modality)}
            for item in items[modality].values():
                by_path[(modality, item.path)] = item
        return cls(snapshot.version, recommender, snapshot.info(), items, by_path)

    def item(self, modality: str, item_id: int) -> Item:
        try:
            return self.items[modality][item_id]
        except KeyError:
            raise UserError(f"no {modality} item {item_id} in this index", 404) from None

    def item_of(self, modality: str, match: Match) -> Item:
        return self.by_path[(modality, match.path)]


class IndexHandle:
    """The index for request handlers: :meth:`current` returns the published version
    (re-loaded when ``crossmodal index`` publishes a new one); a request keeps the
    :class:`Library` it got, so everything it shows comes from one version. Queries run
    one at a time (:attr:`compute`): the model and the CPU are shared."""

    def __init__(self, settings: Settings) -> None:
        from crossmodal.retrieval.recommender import Recommender

        self.settings = settings
        first = Recommender.load(settings.index_dir, device=settings.device)
        self._model = first.model
        self._libraries: OrderedDict[str, Library] = OrderedDict()
        self._add(Library.load(first))
        self._lock = threading.Lock()
        self.compute = threading.Lock()
        # Seconds of compute per second of media, per query modality (moving average):
        # the page's estimate of how long embedding an upload will take.
        self._rates: dict[str, float] = {}

    def record(self, modality: str, media_seconds: float, compute_seconds: float) -> None:
        if media_seconds > 0:
            rate = compute_seconds / media_seconds
            old = self._rates.get(modality)
            self._rates[modality] = rate if old is None else 0.7 * old + 0.3 * rate

    def estimate(self, modality: str, media_seconds: float) -> float | None:
        """Expected compute seconds for a query of ``media_seconds`` (None before the
        first query of that modality)."""
        rate = self._rates.get(modality)
        return None if rate is None else rate * media_seconds

    def _add(self, library: Library) -> None:
        self._libraries[library.version] = library
        # Keep the previous version too: pages rendered from it still link its media.
        while len(self._libraries) > 2:
            self._libraries.popitem(last=False)

    def current(self) -> Library:
        from crossmodal.retrieval.recommender import Recommender
        from crossmodal.retrieval.store import IndexStore

        latest = next(reversed(self._libraries.values()))
        published = latest.recommender.store.current_version()
        if published is None or published == latest.version:
            return latest
        with self._lock:
            latest = next(reversed(self._libraries.values()))
            if latest.version != published:
                store = IndexStore.open(
                    self.settings.index_dir, fingerprint=latest.info.fingerprint
                )
                self._add(Library.load(Recommender(store, self._model, self.settings.device)))
            return next(reversed(self._libraries.values()))

    def version(self, version: str) -> Library:
        """A version still held (the current one or the one before)."""
        self.current()
        try:
            return self._libraries[version]
        except KeyError:
            raise UserError(
                "the index was re-published since this page was loaded: reload the page", 404
            ) from None


@dataclass
class Query:
    """An uploaded or picked query: its file, kind, and the matches found for it."""

    token: str
    path: Path
    name: str
    modality: str  # what the file is used as: "video" (music for it) or "music"
    version: str
    owned: bool  # an upload (removed with the query) rather than a library file
    seconds: float = 0.0  # the file's duration
    matches: list[Match] = field(default_factory=list)
    note: str | None = None  # e.g. how a file shorter than one window was padded
    created: float = field(default_factory=time.monotonic)
    dubbed: Path | None = None


class QueryStore:
    """Uploads and dubbed files in one private temporary folder, addressed by random
    tokens (no request path reaches the filesystem). The oldest beyond ``keep`` and
    those older than ``ttl_s`` are removed; :meth:`close` removes the folder."""

    def __init__(self, keep: int, ttl_s: float) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="crossmodal-web-"))
        self.keep = keep
        self.ttl_s = ttl_s
        self._queries: OrderedDict[str, Query] = OrderedDict()
        self._lock = threading.Lock()

    def new_upload_path(self, suffix: str) -> Path:
        """A fresh file in the private folder, with a safe ``suffix`` (decoders pick
        formats by it); the name is random, never the user's."""
        clean = "".join(c for c in suffix.lower() if c.isalnum())[:8]
        return self.root / f"{secrets.token_hex(12)}.{clean or 'bin'}"

    def add(self, query: Query) -> Query:
        with self._lock:
            self._queries[query.token] = query
            self._expire()
        return query

    def get(self, token: str) -> Query:
        with self._lock:
            self._expire()
            query = self._queries.get(token)
        if query is None:
            raise UserError("this query has expired: upload or pick the file again", 404)
        return query

    def discard(self, query: Query) -> None:
        with self._lock:
            self._queries.pop(query.token, None)
        self._remove(query)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._queries:
            token, oldest = next(iter(self._queries.items()))
            if len(self._queries) <= self.keep and now - oldest.created < self.ttl_s:
                break
            del self._queries[token]
            self._remove(oldest)

    @staticmethod
    def _remove(query: Query) -> None:
        if query.owned:
            query.path.unlink(missing_ok=True)
        if query.dubbed is not None:
            query.dubbed.unlink(missing_ok=True)

    def files(self) -> list[str]:
        return sorted(os.listdir(self.root)) if self.root.is_dir() else []

    def close(self) -> None:
        with self._lock:
            self._queries.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def new_token() -> str:
    return secrets.token_urlsafe(16)
