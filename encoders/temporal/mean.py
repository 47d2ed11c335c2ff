"""Mean over time."""

from __future__ import annotations

import torch
from torch import nn


class MeanPool(nn.Module):
    """(B, T, C) → (B, C): the average over the T time steps. No parameters."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)
