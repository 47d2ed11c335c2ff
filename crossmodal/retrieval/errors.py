"""Errors of the retrieval store; every message says what is wrong and what to do about it."""

from __future__ import annotations

from crossmodal.errors import CrossmodalError


class StoreError(CrossmodalError):
    """Base class of the retrieval store's errors."""


class StoreNotFoundError(StoreError):
    """INDEX_DIR is missing, empty, or holds no published version."""


class StoreCorruptError(StoreError):
    """A published file of INDEX_DIR (pointer, manifest, catalog, index) cannot be read."""


class IncompatibleStoreError(StoreError):
    """INDEX_DIR was built by another model, another embedding size or a newer store format."""


class StoreLockedError(StoreError):
    """Another live process holds INDEX_DIR's writer lock."""


class InvalidVectorsError(StoreError, ValueError):
    """Vectors with the wrong shape, NaN/inf values or zero length."""


class TooFewVectorsError(StoreError, ValueError):
    """Too few vectors to train the requested index kind (IVF-PQ)."""
