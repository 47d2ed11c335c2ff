"""Dilated 1-D convolutions over time."""

from __future__ import annotations

import torch
from torch import nn


class TemporalConvNet(nn.Module):
    """(B, C_in, T) → (B, C_out, T), length preserved.

    A kernel-``kernel_size`` Conv1d-BN-ReLU from ``in_dim`` to ``dim``, then
    ``num_layers - 1`` residual Conv1d-BN-ReLU layers with dilation 2, 4, 8, … (the
    receptive field grows to ``1 + (k - 1)(2^num_layers - 1)`` steps, enough to span a
    few beats), then a 1×1 Conv1d to ``out_dim`` (default ``dim``).
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        num_layers: int = 3,
        kernel_size: int = 3,
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be ≥ 1, got {num_layers}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep the length, got {kernel_size}")
        self.first = _conv_bn_relu(in_dim, dim, kernel_size, dilation=1)
        self.rest = nn.ModuleList(
            _conv_bn_relu(dim, dim, kernel_size, dilation=2**i) for i in range(1, num_layers)
        )
        self.output_dim = out_dim or dim
        self.out = nn.Conv1d(dim, self.output_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        for layer in self.rest:
            x = x + layer(x)
        return self.out(x)


def _conv_bn_relu(in_dim: int, out_dim: int, kernel_size: int, dilation: int) -> nn.Sequential:
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv1d(in_dim, out_dim, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm1d(out_dim),
        nn.ReLU(inplace=True),
    )
