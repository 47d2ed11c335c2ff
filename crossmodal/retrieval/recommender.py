"""Query an index with media files: music for a video, videos for a piece of audio.

Example::

    rec = Recommender.load("library_index")
    for match in rec.recommend_music("holiday.mp4", k=5):
        print(match.rank, match.path, match.score, match.start, match.end)
    rec.find_videos("song.wav", k=5)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from crossmodal.errors import CrossmodalError
from crossmodal.retrieval.indexer import Indexer, model_path_in_store
from crossmodal.retrieval.store import IndexStore


@dataclass
class Match:
    """One retrieved item: its rank (1-based), file, score (cosine) and best window."""

    rank: int
    path: str
    score: float
    start: float
    end: float
    label: str | None
    duration: float | None
    clip_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recommender:
    """A loaded index plus the model that built it.

    A query file is cut into the model's windows; their embeddings are averaged into
    one query vector (the whole file's content), and the index returns the best items,
    each with its best-matching window.
    """

    def __init__(
        self, store: IndexStore, model: torch.nn.Module, device: torch.device | str = "cpu"
    ) -> None:
        self.store = store
        self.model = model.eval().to(device)
        self.embedder = Indexer(model, store.root, device=device)

    @classmethod
    def load(
        cls, index_dir: str | os.PathLike[str], device: torch.device | str = "cpu"
    ) -> Recommender:
        """Open ``index_dir`` and the copy of the model kept inside it."""
        from crossmodal.model import CrossModalModel

        store = IndexStore.open(index_dir)
        fingerprint = store.info().fingerprint
        model_file = model_path_in_store(index_dir, fingerprint)
        if not model_file.is_file():
            raise CrossmodalError(
                f"{index_dir} lacks the model that built it ({model_file.name}); rebuild the "
                "index with `crossmodal index --rebuild`"
            )
        model = CrossModalModel.load(model_file, map_location=device)
        # An index built before checkpoint format 2 stored the fingerprint of that file.
        if fingerprint not in (model.fingerprint(), model.legacy_fingerprint):
            raise CrossmodalError(f"the model file in {index_dir} does not match its index")
        store.close()
        return cls(IndexStore.open(index_dir, fingerprint=fingerprint), model, device)

    @torch.no_grad()
    def embed_query(self, path: str | os.PathLike[str], modality: str) -> np.ndarray:
        """(D,) float32 query vector of a file's video or soundtrack/music."""
        path = Path(path)
        if not path.is_file():
            from crossmodal.data.errors import MissingMediaError

            raise MissingMediaError(path, "file not found")
        _, _, vectors = self.embedder.embed_file(path, modality)
        mean = F.normalize(torch.from_numpy(vectors).mean(dim=0), dim=0)
        return np.ascontiguousarray(mean.numpy(), dtype=np.float32)

    def recommend_music(self, video: str | os.PathLike[str], k: int = 10) -> list[Match]:
        """The ``k`` tracks that best fit ``video`` (its frames; its own sound is ignored)."""
        return self._search(self.embed_query(video, "video"), "music", k)

    def find_videos(self, audio: str | os.PathLike[str], k: int = 10) -> list[Match]:
        """The ``k`` videos that best fit ``audio`` (a music file or a video's soundtrack)."""
        return self._search(self.embed_query(audio, "music"), "video", k)

    def _search(self, query: np.ndarray, modality: str, k: int) -> list[Match]:
        if k < 1:
            raise CrossmodalError(f"k must be >= 1, got {k}")
        (hits,) = self.store.search(modality, query[None, :], k=k, per_item=True)
        return [
            Match(
                rank=i + 1,
                path=hit.item.path,
                score=float(hit.score),
                start=float(hit.start),
                end=float(hit.end),
                label=hit.item.label,
                duration=hit.item.duration,
                clip_id=(hit.item.extra or {}).get("clip_id"),
            )
            for i, hit in enumerate(hits)
        ]

    def close(self) -> None:
        self.store.close()
