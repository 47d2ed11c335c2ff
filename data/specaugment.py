"""SpecAugment-style masking of log-mel spectrograms (Park et al., 2019), without time warp."""

from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """Mask random frequency bands and time spans of log-mels (..., n_mels, frames).

    Each example gets ``freq_masks`` bands of width ~ U{0..freq_width} mel bins and
    ``time_masks`` spans of width ~ U{0..time_width} frames (clamped to the
    spectrogram), placed uniformly. Masked cells take the example's mean value, a neutral
    level for un-normalised log-mels (zero would be a loud value on a log scale).
    Draws from torch's global generator, so DataLoader worker seeding applies. Runs on
    the input's device; returns a new tensor.
    """

    def __init__(
        self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 20
    ) -> None:
        super().__init__()
        if min(freq_masks, freq_width, time_masks, time_width) < 0:
            raise ValueError("mask counts and widths must be >= 0")
        self.freq_masks = freq_masks
        self.freq_width = freq_width
        self.time_masks = time_masks
        self.time_width = time_width

    def extra_repr(self) -> str:
        return (
            f"freq_masks={self.freq_masks}, freq_width={self.freq_width}, "
            f"time_masks={self.time_masks}, time_width={self.time_width}"
        )

    def mask(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Boolean (..., n_mels, frames) mask, True where cells are replaced."""
        *batch, n_mels, frames = shape
        out = torch.zeros(*batch, n_mels, frames, dtype=torch.bool, device=device)
        for size, count, width, dim in (
            (n_mels, self.freq_masks, self.freq_width, -2),
            (frames, self.time_masks, self.time_width, -1),
        ):
            axis = torch.arange(size, device=device)
            for _ in range(count):
                w = torch.randint(0, min(width, size) + 1, (*batch, 1), device=device)
                lo = (torch.rand(*batch, 1, device=device) * (size - w + 1)).floor().long()
                band = (axis >= lo) & (axis < lo + w)  # (..., size)
                out |= band.unsqueeze(-1) if dim == -2 else band.unsqueeze(-2)
        return out

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        if logmel.dim() < 2:
            raise ValueError(f"expected (..., n_mels, frames), got shape {tuple(logmel.shape)}")
        mask = self.mask(logmel.shape, logmel.device)
        fill = logmel.mean(dim=(-2, -1), keepdim=True).expand_as(logmel)
        return torch.where(mask, fill, logmel)
