"""A compact PANN-style CNN over log-mel spectrograms."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from crossmodal.data.logmel import LogMel
from crossmodal.data.specs import AudioSpec
from crossmodal.encoders.base import MusicEncoder


class ConvBlock(nn.Module):
    """Two 3×3 conv-BN-ReLU layers, then 2×2 average pooling (PANN's ConvBlock)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.layers(x), 2, ceil_mode=True)


class LogMelCNN(MusicEncoder):
    """Log-mel (B, n_mels, frames) → (B, channels[-1]), after PANNs' Cnn10 (Kong et al.
    2020): per-mel-bin BatchNorm, ``len(channels)`` conv blocks (default 64-128-256-512)
    with dropout ``dropout`` between them, the mean over frequency, then max + mean over
    time and a Linear-ReLU embedding layer. With a waveform spec it applies
    :class:`~crossmodal.data.logmel.LogMel` (torchaudio) itself.

    Default input: 4 s at 16 kHz, 64 mels, n_fft 512, hop 160 (401 frames).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        seconds: float = 4.0,
        n_mels: int = 64,
        n_fft: int = 512,
        hop_length: int = 160,
        representation: Literal["logmel", "waveform"] = "logmel",
        channels: tuple[int, ...] | list[int] = (64, 128, 256, 512),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.audio_spec = AudioSpec(
            sample_rate=sample_rate,
            seconds=seconds,
            representation=representation,
            n_mels=n_mels,
            n_fft=n_fft,
            hop_length=hop_length,
        )
        self.frontend = LogMel(self.audio_spec) if representation == "waveform" else None
        self.norm = nn.BatchNorm1d(n_mels)
        ins = (1, *channels[:-1])
        self.blocks = nn.ModuleList(ConvBlock(i, o) for i, o in zip(ins, channels, strict=True))
        self.dropout = nn.Dropout(dropout)
        self.embed = nn.Linear(channels[-1], channels[-1])
        self.output_dim = channels[-1]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        self.check_input(audio)
        mel = self.frontend(audio) if self.frontend is not None else audio
        x = self.norm(mel).unsqueeze(1)
        for block in self.blocks:
            x = self.dropout(block(x))
        x = x.mean(dim=2)  # frequency
        x = x.amax(dim=2) + x.mean(dim=2)  # time
        return F.relu(self.embed(self.dropout(x)))
