"""Query an index with media files: music for a video, videos for a piece of audio.

Example::

    rec = Recommender.load("library_index")
    for match in rec.recommend_music("holiday.mp4", k=5):
        print(match.rank, match.path, match.score, match.start, match.end)
    rec.find_videos("song.wav", k=5)
    rec.recommend_music("holiday.mp4", k=5, tag="happy")  # boost happy tracks
    Recommender.load("library_index", blend=1.0)  # rank by mood ("vibe") only

An index built with a tagger (``crossmodal index``'s default) knows each track's tags:
every music match carries its top tags, and ``tag=`` re-ranks the candidates by
``score + tag_weight × p(tag)``.

A model with a vibe part (``model.vibe_dim`` > 0) scores ``(1−α)·sync + α·vibe``: ``blend``
(α) moves from the exact pair (0) to the same mood (1); unset, the model's default (stored
in the index, inside its model file). The stored vectors serve every α (see
:mod:`crossmodal.embedding_layout`): only the query is weighted. A model with a sync gate
(trained since the gate existed) scores ``(1−α)·max(0, sync − τ)/(1 − τ) + α·vibe``
instead: the clips that surely match come first, the rest in order of vibe; the index
answers it with two searches, one per part.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import NOT_UTF8_NAME, utf8_name
from crossmodal.retrieval.indexer import EmbeddedFile, Indexer, model_path_in_store
from crossmodal.retrieval.milvus_store import open_store
from crossmodal.retrieval.store import IndexStore

log = logging.getLogger(__name__)

# The shortest query file answered: shorter than one window, it is padded to one.
MIN_QUERY_SECONDS = 0.5


@dataclass
class Match:
    """One retrieved item: its rank (1-based), file, score (cosine; for a model with a
    vibe part, the blended score ``(1−α)·sync + α·vibe``, gated when the model has a sync
    gate; see :class:`Recommender`) and best window."""

    rank: int
    path: str
    score: float
    start: float
    end: float
    label: str | None
    duration: float | None
    clip_id: str | None
    tags: dict[str, float] | None = None  # top tags (+ the asked one), when the index has them

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QueryResult:
    """The matches of one query file; ``padding``: what was done to a file shorter than
    one window (None when it was long enough); ``mood``: the query's predicted mood
    (None when the model predicts none)."""

    matches: list[Match]
    padding: str | None = None
    mood: str | None = None


class Recommender:
    """A loaded index plus the model that built it.

    A query file is cut into the model's windows; their embeddings are averaged into
    one query vector (the whole file's content), and the index returns the best items,
    each with its best-matching window.

    ``blend`` (α in [0, 1]): score ``(1−α)·sync + α·vibe`` for a model with a vibe part,
    or ``(1−α)·max(0, sync − τ)/(1 − τ) + α·vibe`` for one with a sync gate τ (raised for
    items of many windows, see :meth:`_item_gate`); None: the model's default. A model
    without a vibe part ignores it (one log line).
    """

    def __init__(
        self,
        store: IndexStore,
        model: torch.nn.Module,
        device: torch.device | str = "cpu",
        *,
        blend: float | None = None,
    ) -> None:
        if blend is not None and not 0.0 <= blend <= 1.0:
            raise CrossmodalError(f"blend must be between 0 and 1, got {blend}")
        self.store = store
        self.model = model.eval().to(device)
        self.embedder = Indexer(model, store.root, device=device)
        self.layout = model.layout
        if blend is not None and not self.layout.has_vibe:
            log.warning(
                "note: this index's model has no vibe (mood) part: blend %g ignored, "
                "ranking by sync",
                blend,
            )
            blend = None
        self.blend = blend

    @property
    def default_blend(self) -> float | None:
        """The model's stored default α (None without a vibe part)."""
        return self.layout.blend if self.layout.has_vibe else None

    @classmethod
    def load(
        cls,
        index_dir: str | os.PathLike[str],
        device: torch.device | str = "cpu",
        *,
        blend: float | None = None,
    ) -> Recommender:
        """Open ``index_dir`` and the copy of the model kept inside it (``blend``: see
        the class).

        Searches go to Milvus when the index was published there
        (``crossmodal index --store milvus:URI``), else to the local faiss files.
        """
        from crossmodal.model import CrossModalModel

        store = open_store(index_dir)
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
        return cls(open_store(index_dir, fingerprint=fingerprint), model, device, blend=blend)

    def _embed(self, path: str | os.PathLike[str], modality: str) -> EmbeddedFile:
        from crossmodal.data.errors import MediaError, MissingMediaError

        path = Path(path)
        if not utf8_name(path):
            raise MediaError(path, NOT_UTF8_NAME)
        if not path.is_file():
            raise MissingMediaError(path, "file not found")
        return self.embedder.embed_file(path, modality, min_seconds=MIN_QUERY_SECONDS)

    @staticmethod
    def _mean(vectors: np.ndarray) -> np.ndarray:
        mean = F.normalize(torch.from_numpy(vectors).mean(dim=0), dim=0)
        return np.ascontiguousarray(mean.numpy(), dtype=np.float32)

    def embed_query(self, path: str | os.PathLike[str], modality: str) -> np.ndarray:
        """(D,) float32 query vector of a file's video or soundtrack/music: the
        normalised mean of its windows' embeddings. A file shorter than one window but
        at least :data:`MIN_QUERY_SECONDS` long is padded to one window (video: its last
        frame held; music: silence)."""
        return self._mean(self._embed(path, modality).vectors)

    def query(
        self,
        path: str | os.PathLike[str],
        modality: str,
        k: int = 10,
        *,
        tag: str | None = None,
        tag_weight: float = 1.0,
    ) -> QueryResult:
        """The ``k`` best items of the other modality for the file's ``modality``
        ("video": its frames; "music": its audio or soundtrack), and whether the file
        was padded.

        ``tag`` (e.g. ``"happy"``; music results only): among the ``max(20 k, 200)``
        best-fitting tracks, rank by ``score + tag_weight × p(tag)``; needs an index
        built with a tagger.
        """
        other = "music" if modality == "video" else "video"
        if tag is not None and other != "music":
            raise CrossmodalError("--tag filters music results: videos carry no tags")
        embedded = self._embed(path, modality)
        note = None
        if embedded.padded:
            fill = "its last frame held" if modality == "video" else "silence"
            note = (
                f"{modality} lasts {embedded.duration:.2f} s, shorter than the model's "
                f"{self.embedder.window:g} s window: padded with {fill}"
            )
        query = self._mean(embedded.vectors)
        moods = self.model.predict_mood(torch.from_numpy(query)[None, :])
        mood = moods[0] if moods else None
        if tag is None:
            return QueryResult(self._scored(query, other, k), note, mood)
        candidates = min(max(20 * k, 200), self.store.info().items.get("music", 0))
        matches = self._scored(query, "music", max(candidates, k), tag=tag)
        ranked = sorted(matches, key=lambda m: -(m.score + tag_weight * (m.tags or {})[tag]))
        return QueryResult([replace(m, rank=i + 1) for i, m in enumerate(ranked[:k])], note, mood)

    def recommend_music(
        self,
        video: str | os.PathLike[str],
        k: int = 10,
        *,
        tag: str | None = None,
        tag_weight: float = 1.0,
    ) -> list[Match]:
        """The ``k`` tracks that best fit ``video`` (its frames; its own sound is ignored);
        ``tag``: re-rank by a tag's probability too (see :meth:`query`)."""
        return self.query(video, "video", k, tag=tag, tag_weight=tag_weight).matches

    def find_videos(self, audio: str | os.PathLike[str], k: int = 10) -> list[Match]:
        """The ``k`` videos that best fit ``audio`` (a music file or a video's soundtrack)."""
        return self.query(audio, "music", k).matches

    def _part_query(self, query: np.ndarray, blend: float | None) -> tuple[np.ndarray, float]:
        """The query weighted for ``blend`` and its norm: the store scores the normalised
        query, and the norm turns its cosines back into the blended score. The query (a
        mean of window embeddings) first has each part made unit-norm again, as every
        stored vector's parts are, so that its part scores are cosines."""
        vector = torch.from_numpy(query)
        if self.layout.has_vibe:
            vector = self.layout.combine(*self.layout.split(vector))
        weighted = self.layout.weight_query(vector, blend).numpy()
        weighted = np.ascontiguousarray(weighted, dtype=np.float32)
        return weighted, float(np.linalg.norm(weighted))

    def _scored(
        self, query: np.ndarray, modality: str, k: int, tag: str | None = None
    ) -> list[Match]:
        """The ``k`` best items for a stored-layout ``query`` at this recommender's blend."""
        alpha = self.layout.blend if self.blend is None else self.blend
        if not self.layout.gated or alpha >= 1.0 or alpha <= 0.0:
            weighted, norm = self._part_query(query, self.blend)
            return self._search(weighted, modality, k, tag=tag, norm=norm)
        return self._gated_search(query, modality, k, alpha, tag)

    def _item_gate(self, item: Any) -> float:
        """The sync gate for an item scored by its best of W windows
        (:meth:`~crossmodal.embedding_layout.EmbeddingLayout.gate_for_windows`), W its
        duration over the window length (non-overlapping windows; at least 1)."""
        window = float(self.embedder.window)
        duration = item.duration or window
        return self.layout.gate_for_windows(max(1, int(duration // window)))

    def _gated_search(
        self, query: np.ndarray, modality: str, k: int, alpha: float, tag: str | None
    ) -> list[Match]:
        """Top ``k`` by the gated score ``(1−α)·max(0, sync − τ)/(1 − τ) + α·vibe`` (see
        :mod:`crossmodal.embedding_layout`), from two searches of the same index.

        Each part's score of an item is its best window for that part, and an item of W
        windows is gated at :meth:`_item_gate` (a best of many windows passes a fixed gate
        by chance more often). The sync search widens until its last item is below the
        lowest gate, so it holds every item above its gate; an item it misses scores
        ``α·vibe`` and is in the top ``k`` only if the vibe search holds it. The vibe
        search widens until it has scored every item above its gate. With an exact (flat)
        index this is the exact top ``k``; an approximate index can miss a vibe score,
        and such an item is scored with the lowest vibe score fetched.
        """
        if k < 1:
            raise CrossmodalError(f"k must be >= 1, got {k}")
        total = self.store.info().items.get(modality, 0)
        if total == 0:
            return []
        lowest_gate = float(self.layout.gate)
        sync_query, sync_norm = self._part_query(query, 0.0)
        fetch = min(k, total)
        while True:
            sync_hits = self._hits(sync_query, modality, fetch, sync_norm)
            if fetch >= total or not sync_hits or sync_hits[-1][1] < lowest_gate:
                break
            fetch = min(4 * fetch, total)
        above = {
            hit.item.item_id: (hit, score)
            for hit, score in sync_hits
            if score > self._item_gate(hit.item)
        }
        vibe_query, vibe_norm = self._part_query(query, 1.0)
        fetch = min(k, total)
        while True:
            vibe_hits = self._hits(vibe_query, modality, fetch, vibe_norm)
            seen = {hit.item.item_id for hit, _ in vibe_hits}
            if fetch >= total or above.keys() <= seen:
                break
            fetch = min(4 * fetch, total)
        vibe_of = {hit.item.item_id: (hit, score) for hit, score in vibe_hits}
        floor = min((score for _, score in vibe_hits), default=0.0)
        scored = []
        for item_id in {**vibe_of, **above}:
            sync_hit = above.get(item_id)
            vibe_hit, vibe = vibe_of.get(item_id, (None, floor))
            sync = 0.0
            if sync_hit is not None:
                gate = self._item_gate(sync_hit[0].item)
                sync = float(self.layout.gate_sync(torch.tensor(sync_hit[1]), gate))
            score = (1.0 - alpha) * sync + alpha * vibe
            # A sure match is shown at its matching window, the rest at their vibe window.
            hit = sync_hit[0] if sync_hit is not None else vibe_hit
            scored.append((score, hit))
        scored.sort(key=lambda pair: -pair[0])
        self._require_tags([hit for _, hit in scored], tag)
        return [self._match(i + 1, hit, score, tag) for i, (score, hit) in enumerate(scored[:k])]

    def _hits(
        self, query: np.ndarray, modality: str, k: int, norm: float
    ) -> list[tuple[Any, float]]:
        """(hit, score) of the ``k`` best items, scores in the weighted query's units."""
        (hits,) = self.store.search(modality, query[None, :], k=max(1, k), per_item=True)
        return [(hit, float(hit.score) * norm) for hit in hits]

    def _match(self, rank: int, hit: Any, score: float, tag: str | None) -> Match:
        item_tags = _item_tags(hit.item.extra, tag)
        return Match(
            rank=rank,
            path=hit.item.path,
            score=score,
            start=float(hit.start),
            end=float(hit.end),
            label=hit.item.label,
            duration=hit.item.duration,
            clip_id=(hit.item.extra or {}).get("clip_id"),
            tags=item_tags if item_tags is not None or tag is None else {tag: 0.0},
        )

    @staticmethod
    def _require_tags(hits: list[Any], tag: str | None) -> None:
        """A tag query needs an index that keeps tags."""
        if tag is not None and hits and all(_item_tags(h.item.extra, tag) is None for h in hits):
            raise CrossmodalError(
                "this index keeps no music tags; rebuild it with a tagger: "
                "`crossmodal index --rebuild --tagger msd ...`"
            )

    def _search(
        self,
        query: np.ndarray,
        modality: str,
        k: int,
        tag: str | None = None,
        norm: float = 1.0,
    ) -> list[Match]:
        if k < 1:
            raise CrossmodalError(f"k must be >= 1, got {k}")
        hits = self._hits(query, modality, k, norm)
        self._require_tags([hit for hit, _ in hits], tag)
        return [self._match(i + 1, hit, score, tag) for i, (hit, score) in enumerate(hits)]

    def close(self) -> None:
        self.store.close()


def _item_tags(
    extra: dict[str, Any] | None, tag: str | None, top: int = 3
) -> dict[str, float] | None:
    """An item's ``top`` tags (and ``tag``) from its catalog entry; None when untagged."""
    from crossmodal.tagging import TrackTags, tag_index

    stored = (extra or {}).get("tags")
    if not stored:
        return None
    tags = TrackTags.from_json(stored)
    found = dict(tags.top(top))
    if tag is not None:
        name = tags.names[tag_index(tags.names, tag)]
        found[tag] = found.get(name, tags.probability(name))
    return found
