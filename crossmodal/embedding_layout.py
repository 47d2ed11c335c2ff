"""The two levels of one embedding: a "sync" part (this music was made for this video)
and an optional "vibe" part (same mood), stored side by side in one vector.

A model with a vibe part emits ``[√(1−α₀)·sync, √α₀·vibe]`` where ``sync`` and ``vibe``
are each unit-norm and ``α₀`` is the model's default blend: the whole vector is then
unit-norm and the dot product of two such vectors is ``(1−α₀)·sync·sync' + α₀·vibe·vibe'``.
Any other blend ``α`` needs no other index: weighting the *query's* parts
(:meth:`EmbeddingLayout.weight_query`) makes the dot product with the stored vectors
``(1−α)·sync·sync' + α·vibe·vibe'``.

The sync gate. Between clips that are *not* the same piece the sync similarity is noise
about instance identity (spread about ±0.25 on the synthetic corpus), and added linearly
it scrambles the mood order the vibe part gives; only a sync similarity that signals an
actual match carries information. A layout with a ``gate`` τ (calibrated after training:
:func:`calibrate_gate`, a high quantile of the sync similarity of validation pairs that
do not match) therefore scores

    (1−α)·max(0, sync − τ)/(1 − τ) + α·vibe

(:meth:`EmbeddingLayout.scores`; at α 0 the plain sync similarity): a clip above the
gate ranks by how surely it matches, every other clip by its vibe. This is not a dot product, so an index searches each part
on its own and combines them (:class:`~crossmodal.retrieval.recommender.Recommender`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["EmbeddingLayout", "calibrate_gate"]

# The share of non-matching validation pairs whose sync similarity stays below the gate
# (0.99 until the vibe heads read the clip view: 0.998 lifted the new-video share by
# 0.025-0.05 on five corpora at an R@1 cost of 0-0.013; docs/training.md).
GATE_QUANTILE = 0.998
# The quantile of gates stored before it was recorded with them.
LEGACY_GATE_QUANTILE = 0.99
# An index item of many windows passes the gate by chance with at most this complement
# (1 %; see EmbeddingLayout.gate_for_windows).
WINDOW_ITEM_QUANTILE = 0.99
# ... unless that would leave more than this share of the true pairs below the gate.
PAIR_QUANTILE = 0.1
# At most this many validation clips calibrate the gate (a seeded subset beyond it).
MAX_GATE_CLIPS = 2048


@dataclass(frozen=True)
class EmbeddingLayout:
    """Widths of the sync and vibe parts and the default blend ``α₀`` baked into stored
    vectors. ``vibe_dim`` 0: one part (sync) only, every blend is the sync score.
    ``gate``: the sync gate τ in [-1, 1) (see the module docstring); None: the linear
    score ``(1−α)·sync + α·vibe``. ``gate_quantile``: the share of non-matching pairs
    the gate was calibrated to keep below it (:func:`calibrate_gate`), which
    :meth:`gate_for_windows` keeps for items of many windows; files that do not record it
    were calibrated at the former 0.99."""

    sync_dim: int
    vibe_dim: int = 0
    blend: float = 0.0
    gate: float | None = None
    gate_quantile: float = GATE_QUANTILE

    def __post_init__(self) -> None:
        if self.sync_dim < 1 or self.vibe_dim < 0:
            raise ValueError(f"bad embedding layout: sync {self.sync_dim}, vibe {self.vibe_dim}")
        if self.vibe_dim and not 0.0 < self.blend < 1.0:
            raise ValueError(
                f"the default blend of a vibe part must be in (0, 1), got {self.blend}"
            )
        if self.gate is not None and not (self.has_vibe and -1.0 <= self.gate < 1.0):
            raise ValueError(f"a sync gate needs a vibe part and τ in [-1, 1), got {self.gate}")
        if not 0.5 <= self.gate_quantile < 1.0:
            raise ValueError(f"the gate's quantile must be in [0.5, 1), got {self.gate_quantile}")

    @property
    def has_vibe(self) -> bool:
        return self.vibe_dim > 0

    @property
    def dim(self) -> int:
        """Width of the stored vector."""
        return self.sync_dim + self.vibe_dim

    def combine(self, sync: torch.Tensor, vibe: torch.Tensor | None) -> torch.Tensor:
        """Unit-norm parts (B, sync_dim), (B, vibe_dim) → the stored (B, dim) vector."""
        if not self.has_vibe:
            return sync
        return torch.cat([math.sqrt(1.0 - self.blend) * sync, math.sqrt(self.blend) * vibe], -1)

    def split(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stored (…, dim) vector → its unit-norm ``(sync, vibe)`` parts (vibe None
        without a vibe part)."""
        if not self.has_vibe:
            return emb, None
        sync, vibe = emb[..., : self.sync_dim], emb[..., self.sync_dim :]
        return F.normalize(sync, dim=-1), F.normalize(vibe, dim=-1)

    def weight_query(self, query: torch.Tensor, blend: float | None) -> torch.Tensor:
        """A stored-layout query vector weighted so that its dot product with stored
        vectors is ``(1−blend)·sync + blend·vibe``. ``blend`` None: the default (the
        query unchanged)."""
        if not self.has_vibe or blend is None:
            return query
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {blend}")
        sync, vibe = query[..., : self.sync_dim], query[..., self.sync_dim :]
        return torch.cat(
            [
                # The stored query parts carry √(1−α₀) and √α₀ already.
                sync * ((1.0 - blend) / (1.0 - self.blend)),
                vibe * (blend / self.blend),
            ],
            -1,
        )

    @property
    def gated(self) -> bool:
        return self.has_vibe and self.gate is not None

    def gate_sync(self, sync_scores: torch.Tensor, gate: float | None = None) -> torch.Tensor:
        """Sync similarities → ``max(0, s − τ)/(1 − τ)`` (unchanged without a gate);
        ``gate``: a τ other than the layout's, e.g. :meth:`gate_for_windows`."""
        if not self.gated:
            return sync_scores
        tau = self.gate if gate is None else gate
        return (sync_scores - tau).clamp_min(0.0) / (1.0 - tau)

    def gate_for_windows(self, windows: int) -> float:
        """The gate for an item scored by its best of ``windows`` windows (an index item
        of a long file). The best of W non-matching windows passes the one-window gate τ
        far more often than a single window does (1 − q^W, q = ``gate_quantile``), so the
        gate rises for the maximum until an item passes by chance with probability
        1 − :data:`WINDOW_ITEM_QUANTILE` (1 %): with non-matching sync similarities taken
        as centred at 0 and normal (as InfoNCE leaves them; their spread σ estimated as
        τ / z(q)), ``τ_W = max(τ, σ · z(0.99^(1/W)))``, capped at 0.99. τ itself for one
        window, or for a gate at or below 0.

        A long item's target is 1 % rather than q: at q = 0.998 the normal tail would put
        the gate of a two-minute track (30 windows of 4 s) at the 0.99 cap, above its own
        matching window (a soundtrack cut into a 120-s MP3 scored 0.985 and lost its sync
        credit). For a gate calibrated at 0.99 this is the former rule."""
        if not self.gated:
            raise ValueError("this layout has no sync gate")
        tau = float(self.gate)
        if windows <= 1 or tau <= 0.0:
            return tau
        normal = NormalDist()
        sigma = tau / normal.inv_cdf(self.gate_quantile)
        item = min(self.gate_quantile, WINDOW_ITEM_QUANTILE)
        return min(max(tau, sigma * normal.inv_cdf(item ** (1.0 / windows))), 0.99)

    def combine_scores(
        self, sync_scores: torch.Tensor, vibe_scores: torch.Tensor, blend: float | None = None
    ) -> torch.Tensor:
        """Per-part similarities → the score at ``blend`` (None: the default α₀). At α 0
        the score is the sync similarity itself, gate or not: the gate decides how the
        two parts mix, and with no vibe to mix every clip ranks by sync."""
        alpha = self.blend if blend is None else blend
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {blend}")
        if alpha == 0.0:
            return sync_scores
        return (1.0 - alpha) * self.gate_sync(sync_scores) + alpha * vibe_scores

    def scores(
        self, queries: torch.Tensor, gallery: torch.Tensor, blend: float | None = None
    ) -> torch.Tensor:
        """The (Q, N) score matrix of stored-layout vectors at ``blend`` (None: α₀):
        the dot product for a one-part or ungated layout (at α₀ that is the stored
        vectors' own inner product), else the gated score of the module docstring."""
        if not self.gated:
            return self.weight_query(queries, blend) @ gallery.T
        q_sync, q_vibe = self.split(queries)
        g_sync, g_vibe = self.split(gallery)
        return self.combine_scores(q_sync @ g_sync.T, q_vibe @ g_vibe.T, blend)

    def with_gate(self, gate: float | None) -> EmbeddingLayout:
        return EmbeddingLayout(self.sync_dim, self.vibe_dim, self.blend, gate, self.gate_quantile)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sync_dim": self.sync_dim,
            "vibe_dim": self.vibe_dim,
            "blend": self.blend,
        }
        if self.gate is not None:
            out["gate"] = self.gate
            out["gate_quantile"] = self.gate_quantile
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, dim: int) -> EmbeddingLayout:
        """From :meth:`to_dict`; None (an index or file from before the vibe part):
        one sync part of width ``dim``. A dict without ``gate`` (before the sync gate):
        the linear score; a gate without ``gate_quantile`` was calibrated at 0.99."""
        if not data:
            return cls(dim)
        gate = data.get("gate")
        return cls(
            int(data["sync_dim"]),
            int(data["vibe_dim"]),
            float(data["blend"]),
            None if gate is None else float(gate),
            float(
                data.get("gate_quantile", GATE_QUANTILE if gate is None else LEGACY_GATE_QUANTILE)
            ),
        )


def calibrate_gate(
    video: torch.Tensor,
    music: torch.Tensor,
    tracks: torch.Tensor,
    layout: EmbeddingLayout,
    quantile: float = GATE_QUANTILE,
) -> float | None:
    """The sync gate τ for ``layout`` from embedded validation clips (stored-layout
    vectors, one row per clip): the ``quantile`` of the sync similarity over every
    video–music pair of *different* tracks, or, when lower, the :data:`PAIR_QUANTILE`
    quantile over the pairs of the *same* track (a weak sync part: the gate keeps 90 %
    of the true pairs rather than losing them to the mood order). None when the layout has no vibe part or
    there are fewer than two tracks. Clamped to [-1, 0.99] so that a match above it
    keeps some room. Beyond :data:`MAX_GATE_CLIPS` clips a seeded subset is used; the
    pairs are scored in row blocks."""
    if not layout.has_vibe or len(torch.unique(tracks)) < 2:
        return None
    if len(tracks) > MAX_GATE_CLIPS:
        # A seeded subset keeps memory bounded (≈ 4 M pairs), never an n×n matrix of a
        # large validation split.
        keep = torch.randperm(len(tracks), generator=torch.Generator().manual_seed(0))
        keep = keep[:MAX_GATE_CLIPS].sort().values
        video, music, tracks = video[keep], music[keep], tracks[keep]
    v_sync, _ = layout.split(video.float())
    m_sync, _ = layout.split(music.float())
    others, pairs = [], []
    for start in range(0, len(tracks), 256):
        sims = v_sync[start : start + 256] @ m_sync.T
        other = tracks[start : start + 256, None] != tracks[None, :]
        others.append(sims[other].numpy())
        pairs.append(sims[~other].numpy())
    value = float(np.quantile(np.concatenate(others).astype(np.float64), quantile))
    matched = np.concatenate(pairs).astype(np.float64)
    # A weak sync part (a small corpus) leaves many true pairs under that quantile, and
    # gating them away costs the exact pairs: the gate then lets 90 % of them through.
    value = min(value, float(np.quantile(matched, PAIR_QUANTILE)))
    return min(max(value, -1.0), 0.99)
