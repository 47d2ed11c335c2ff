"""Projection heads: backbone features (B, F) → shared-space vectors (B, D).

The heads do not normalise; :class:`crossmodal.model.CrossModalModel` L2-normalises
their output.
"""

from __future__ import annotations

import torch
from torch import nn

from crossmodal.registry import Registry

HEADS: Registry[nn.Module] = Registry("head")


@HEADS.register("linear")
class LinearHead(nn.Module):
    """``y = W x + b`` with ``W`` of shape (D, F)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


@HEADS.register("mlp")
class MLPHead(nn.Module):
    """``y = W2 · dropout(GELU(LayerNorm(W1 x + b1))) + b2`` with a hidden width of
    ``hidden_dim`` (default: ``max(in_dim, out_dim)``)."""

    def __init__(
        self, in_dim: int, out_dim: int, hidden_dim: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        hidden = hidden_dim or max(in_dim, out_dim)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.LayerNorm(hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def build_head(
    kind: str, in_dim: int, out_dim: int, hidden_dim: int | None = None, dropout: float = 0.0
) -> nn.Module:
    """The head registered as ``kind`` (``"linear"`` → :class:`LinearHead`, ``"mlp"`` →
    :class:`MLPHead`); ``hidden_dim``/``dropout`` go to the heads that take them.
    An unknown kind raises :class:`~crossmodal.registry.UnknownNameError`."""
    wanted = {"hidden_dim": hidden_dim, "dropout": dropout}
    options = {k: v for k, v in wanted.items() if k in HEADS.options(kind)}
    return HEADS.create(kind, in_dim=in_dim, out_dim=out_dim, **options)
