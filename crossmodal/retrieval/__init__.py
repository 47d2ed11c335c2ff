"""Retrieval storage: faiss vector indexes + a SQLite catalog in a versioned INDEX_DIR.

Needs no model: it takes vectors and metadata from an indexer and answers top-k
queries. :class:`IndexStore` is the entry point (readers: ``open``/``search``; the
writer: ``begin_update`` → :class:`StoreUpdater`); :class:`VectorIndex` and
:class:`Catalog` are its parts.
"""

from __future__ import annotations

from crossmodal.retrieval.best_window import first_per_item
from crossmodal.retrieval.catalog import Catalog, WindowTable, resolve_path
from crossmodal.retrieval.checksum import file_checksum, file_signature
from crossmodal.retrieval.errors import (
    IncompatibleStoreError,
    InvalidVectorsError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    TooFewVectorsError,
)
from crossmodal.retrieval.index_params import INDEX_KINDS, KIND_CHOICES, IndexParams
from crossmodal.retrieval.layout import STORE_FORMAT
from crossmodal.retrieval.lock import WriterLock
from crossmodal.retrieval.records import MODALITIES, Hit, Item, ItemMeta, StoreInfo, Window
from crossmodal.retrieval.snapshot import StoreSnapshot
from crossmodal.retrieval.store import IndexStore
from crossmodal.retrieval.updater import StoreUpdater
from crossmodal.retrieval.vector_index import VectorIndex, choose_kind

__all__ = [
    "INDEX_KINDS",
    "KIND_CHOICES",
    "MODALITIES",
    "STORE_FORMAT",
    "Catalog",
    "Hit",
    "IncompatibleStoreError",
    "IndexParams",
    "IndexStore",
    "InvalidVectorsError",
    "Item",
    "ItemMeta",
    "StoreCorruptError",
    "StoreError",
    "StoreInfo",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreSnapshot",
    "StoreUpdater",
    "TooFewVectorsError",
    "VectorIndex",
    "Window",
    "WindowTable",
    "WriterLock",
    "choose_kind",
    "file_checksum",
    "file_signature",
    "first_per_item",
    "resolve_path",
]
