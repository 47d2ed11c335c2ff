"""Attention pooling over time with learned queries."""

from __future__ import annotations

import math

import torch
from torch import nn


class AttentionPool(nn.Module):
    """(B, T, C) → (B, C): a softmax-weighted average of the time steps, per head.

    The channels split into ``num_heads`` groups of ``d = C / num_heads``; head ``h`` has a
    learned query ``q_h`` (init 0, i.e. the mean) and computes
    ``w_{t,h} = softmax_t(<x_{t,h}, q_h> / sqrt(d))``, ``y_h = Σ_t w_{t,h} x_{t,h}``.
    """

    def __init__(self, dim: int, num_heads: int = 4) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.output_dim = dim
        self.query = nn.Parameter(torch.zeros(num_heads, dim // num_heads))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights (B, T, num_heads); they sum to 1 over T."""
        b, t, c = x.shape
        heads = x.reshape(b, t, self.num_heads, c // self.num_heads)
        scores = (heads * self.query).sum(-1) / math.sqrt(c // self.num_heads)
        return scores.softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        heads = x.reshape(b, t, self.num_heads, c // self.num_heads)
        pooled = (self.weights(x).unsqueeze(-1) * heads).sum(dim=1)
        return pooled.reshape(b, c)
