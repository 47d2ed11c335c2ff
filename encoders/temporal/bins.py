"""Time kept coarse: averages over consecutive bins, concatenated."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TimeBinsPool(nn.Module):
    """(B, T, C) → (B, C × num_bins): the mean of each of ``num_bins`` consecutive
    stretches of time (``adaptive_avg_pool1d``), flattened channel-major.

    Unlike the mean it keeps *when* things happen, at ``T / num_bins`` resolution, so two
    clips with the same content but shifted rhythm map to different features.
    """

    def __init__(self, dim: int, num_bins: int) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.output_dim = dim * num_bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < self.num_bins:
            raise ValueError(f"{x.shape[1]} time steps cannot fill {self.num_bins} bins")
        return F.adaptive_avg_pool1d(x.transpose(1, 2), self.num_bins).flatten(1)

    def clip_mean(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, C × num_bins) output → (B, C): the mean over the bins, what the clip holds
        wherever in time (bins of equal length; adaptive pooling's bins differ by at most
        one step, so this is the mean over time up to that rounding)."""
        return pooled.reshape(pooled.shape[0], -1, self.num_bins).mean(dim=-1)
