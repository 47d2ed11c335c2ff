"""The two levels of one embedding: a "sync" part (this music was made for this video)
and an optional "vibe" part (same mood), stored side by side in one vector.

A model with a vibe part emits ``[√(1−α₀)·sync, √α₀·vibe]`` where ``sync`` and ``vibe``
are each unit-norm and ``α₀`` is the model's default blend: the whole vector is then
unit-norm and the dot product of two such vectors is ``(1−α₀)·sync·sync' + α₀·vibe·vibe'``.
Any other blend ``α`` needs no other index: weighting the *query's* parts
(:meth:`EmbeddingLayout.weight_query`) makes the dot product with the stored vectors
``(1−α)·sync·sync' + α·vibe·vibe'``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

__all__ = ["EmbeddingLayout"]


@dataclass(frozen=True)
class EmbeddingLayout:
    """Widths of the sync and vibe parts and the default blend ``α₀`` baked into stored
    vectors. ``vibe_dim`` 0: one part (sync) only, every blend is the sync score."""

    sync_dim: int
    vibe_dim: int = 0
    blend: float = 0.0

    def __post_init__(self) -> None:
        if self.sync_dim < 1 or self.vibe_dim < 0:
            raise ValueError(f"bad embedding layout: sync {self.sync_dim}, vibe {self.vibe_dim}")
        if self.vibe_dim and not 0.0 < self.blend < 1.0:
            raise ValueError(
                f"the default blend of a vibe part must be in (0, 1), got {self.blend}"
            )

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

    def to_dict(self) -> dict[str, Any]:
        return {"sync_dim": self.sync_dim, "vibe_dim": self.vibe_dim, "blend": self.blend}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, dim: int) -> EmbeddingLayout:
        """From :meth:`to_dict`; None (an index or file from before the vibe part):
        one sync part of width ``dim``."""
        if not data:
            return cls(dim)
        return cls(int(data["sync_dim"]), int(data["vibe_dim"]), float(data["blend"]))
