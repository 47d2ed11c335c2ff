"""Plain records that go in and out of the store: item metadata, items, windows and hits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from crossmodal.retrieval.checksum import file_signature

# The two libraries a store holds, one faiss index each.
MODALITIES: tuple[str, ...] = ("music", "video")


def check_modality(modality: str) -> str:
    """Return ``modality`` when it is one of :data:`MODALITIES`, else raise ``ValueError``."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    return modality


@dataclass(frozen=True)
class ItemMeta:
    """What the indexer knows about a media file when it adds it.

    ``size`` in bytes, ``mtime`` in seconds since the epoch (``os.stat().st_mtime``),
    ``checksum`` the content signature (:func:`file_signature`: size, mtime in ns, head
    and tail bytes) that change detection compares, ``duration`` in seconds,
    ``label`` a free-form class/mood, ``extra`` any JSON-serialisable dict.
    """

    size: int
    mtime: float
    checksum: str
    duration: float | None = None
    label: str | None = None
    extra: dict[str, Any] | None = None

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        duration: float | None = None,
        label: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ItemMeta:
        """Stat ``path`` and take its content signature (reads its head and tail)."""
        st = Path(path).stat()
        return cls(
            size=st.st_size,
            mtime=st.st_mtime,
            checksum=file_signature(path, st),
            duration=duration,
            label=label,
            extra=extra,
        )


@dataclass(frozen=True)
class Item:
    """One catalogued media file of one modality.

    ``path`` is the path as the indexer gave it, ``resolved_path`` its absolute, resolved
    form (the key lookups use). ``item_id`` is stable while the file is unchanged; a
    changed file is re-added under a new id.
    """

    item_id: int
    modality: str
    path: str
    resolved_path: str
    size: int
    mtime: float
    checksum: str
    duration: float | None
    label: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    added_at: str = ""


@dataclass(frozen=True)
class Window:
    """One embedded window of an item: vector ``vector_id`` covers ``[start, end]`` seconds."""

    vector_id: int
    item_id: int
    start: float
    end: float


class Hit(NamedTuple):
    """One search result: ``item`` with cosine ``score`` of its window ``[start, end]``.

    With per-item search the window is the item's best-scoring window for the query.
    (A named tuple: a search builds k of these per query, and they are cheap to make.)
    """

    item: Item
    score: float
    vector_id: int
    start: float
    end: float


@dataclass(frozen=True)
class StoreInfo:
    """What a published store version holds and which model built it.

    ``fingerprint`` identifies the model whose embeddings the store holds (the caller
    defines it, e.g. a hash of the checkpoint); ``index_kinds``, ``items`` and
    ``windows`` map each modality to its index kind and counts.
    """

    root: str
    version: str
    store_format: int
    fingerprint: str
    dim: int
    crossmodal_version: str
    index_kinds: dict[str, str]
    items: dict[str, int]
    windows: dict[str, int]
    created: str
    updated: str
