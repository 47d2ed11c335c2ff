"""Temporal aggregation: (B, T, C) sequences of per-step features → (B, D) vectors."""

from __future__ import annotations

from typing import Literal

from torch import nn

from crossmodal.encoders.temporal.attention import AttentionPool
from crossmodal.encoders.temporal.bins import TimeBinsPool
from crossmodal.encoders.temporal.conv import TemporalConvNet
from crossmodal.encoders.temporal.mean import MeanPool
from crossmodal.encoders.temporal.transformer import TemporalTransformer

TemporalKind = Literal["mean", "attention", "transformer", "bins"]
TEMPORAL_KINDS: tuple[str, ...] = ("mean", "attention", "transformer", "bins")


def build_temporal_pool(
    kind: str, dim: int, num_steps: int, num_heads: int = 4, num_bins: int = 8, num_layers: int = 1
) -> nn.Module:
    """A pooling module by name; each has ``output_dim``.

    ``mean`` (no parameters), ``attention`` (:class:`AttentionPool`, ``num_heads``),
    ``transformer`` (:class:`TemporalTransformer`, ``num_layers``/``num_heads``, up to
    ``num_steps`` steps), ``bins`` (:class:`TimeBinsPool`, ``num_bins``).
    """
    if kind == "mean":
        return MeanPool(dim)
    if kind == "attention":
        heads = num_heads if dim % num_heads == 0 else 1
        return AttentionPool(dim, heads)
    if kind == "transformer":
        heads = num_heads if dim % num_heads == 0 else 1
        return TemporalTransformer(dim, max_len=num_steps, num_layers=num_layers, num_heads=heads)
    if kind == "bins":
        return TimeBinsPool(dim, min(num_bins, num_steps))
    raise ValueError(f"temporal pooling must be one of {', '.join(TEMPORAL_KINDS)}; got {kind!r}")


__all__ = [
    "TEMPORAL_KINDS",
    "AttentionPool",
    "MeanPool",
    "TemporalConvNet",
    "TemporalKind",
    "TemporalTransformer",
    "TimeBinsPool",
    "build_temporal_pool",
]
