"""A small transformer over time, then the mean."""

from __future__ import annotations

import torch
from torch import nn


class TemporalTransformer(nn.Module):
    """(B, T, C) → (B, C): learned position embeddings (max ``max_len`` steps), then
    ``num_layers`` pre-norm transformer encoder layers (``num_heads`` heads, feed-forward
    ``mlp_ratio × C``, GELU), a final LayerNorm and the mean over time."""

    def __init__(
        self,
        dim: int,
        max_len: int,
        num_layers: int = 1,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.output_dim = dim
        self.max_len = max_len
        self.position = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim,
            num_heads,
            dim_feedforward=round(mlp_ratio * dim),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"sequence of {t} steps is longer than max_len={self.max_len}")
        return self.norm(self.layers(x + self.position[:, :t])).mean(dim=1)
