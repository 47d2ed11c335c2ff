"""Temporal aggregation: (B, T, C) sequences of per-step features → (B, D) vectors.

The pools are registered by kind in :data:`TEMPORAL_POOLS` (the one list of kinds):
``TEMPORAL_POOLS.names()`` lists them.
"""

from __future__ import annotations

import torch
from torch import nn

from crossmodal.encoders.temporal.attention import AttentionPool
from crossmodal.encoders.temporal.bins import TimeBinsPool
from crossmodal.encoders.temporal.conv import TemporalConvNet
from crossmodal.encoders.temporal.mean import MeanPool
from crossmodal.encoders.temporal.transformer import TemporalTransformer
from crossmodal.registry import Registry

TEMPORAL_POOLS: Registry[nn.Module] = Registry("temporal pooling")


@TEMPORAL_POOLS.register("mean")
def _mean(dim: int, num_steps: int) -> nn.Module:
    return MeanPool(dim)


@TEMPORAL_POOLS.register("attention")
def _attention(dim: int, num_steps: int, num_heads: int = 4) -> nn.Module:
    return AttentionPool(dim, num_heads if dim % num_heads == 0 else 1)


@TEMPORAL_POOLS.register("transformer")
def _transformer(dim: int, num_steps: int, num_heads: int = 4, num_layers: int = 1) -> nn.Module:
    heads = num_heads if dim % num_heads == 0 else 1
    return TemporalTransformer(dim, max_len=num_steps, num_layers=num_layers, num_heads=heads)


@TEMPORAL_POOLS.register("bins")
def _bins(dim: int, num_steps: int, num_bins: int = 8) -> nn.Module:
    return TimeBinsPool(dim, min(num_bins, num_steps))


def build_temporal_pool(
    kind: str, dim: int, num_steps: int, num_heads: int = 4, num_bins: int = 8, num_layers: int = 1
) -> nn.Module:
    """A pooling module by kind; each has ``output_dim``.

    ``mean`` (no parameters), ``attention`` (:class:`AttentionPool`, ``num_heads``),
    ``transformer`` (:class:`TemporalTransformer`, ``num_layers``/``num_heads``, up to
    ``num_steps`` steps), ``bins`` (:class:`TimeBinsPool`, ``num_bins``); each kind
    takes the options it uses. An unknown kind raises
    :class:`~crossmodal.registry.UnknownNameError`.
    """
    wanted = {"num_heads": num_heads, "num_bins": num_bins, "num_layers": num_layers}
    options = {k: v for k, v in wanted.items() if k in TEMPORAL_POOLS.options(kind)}
    return TEMPORAL_POOLS.create(kind, dim=dim, num_steps=num_steps, **options)


def pooled_clip_view(pool: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """A pool's (B, output_dim) output → what holds for the whole clip: the mean over the
    bins of a ``bins`` pool (:meth:`TimeBinsPool.clip_mean`); every other kind pools time
    away already, and its output is returned as it is."""
    if isinstance(pool, TimeBinsPool):
        return pool.clip_mean(pooled)
    return pooled


def pooled_clip_dim(pool: nn.Module) -> int:
    """Width of :func:`pooled_clip_view` for ``pool``."""
    if isinstance(pool, TimeBinsPool):
        return pool.output_dim // pool.num_bins
    return int(pool.output_dim)


__all__ = [
    "TEMPORAL_POOLS",
    "AttentionPool",
    "MeanPool",
    "TemporalConvNet",
    "TemporalTransformer",
    "TimeBinsPool",
    "build_temporal_pool",
    "pooled_clip_dim",
    "pooled_clip_view",
]
