"""``audio_tiny``: a CPU-sized music tower that keeps time until late."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from crossmodal.data.logmel import LogMel
from crossmodal.data.specs import AudioSpec
from crossmodal.encoders.base import MusicEncoder
from crossmodal.encoders.temporal import TemporalConvNet, build_temporal_pool


class MusicTiny(MusicEncoder):
    """Log-mel → conv over (frequency, time) that folds frequency away → temporal convs
    → pooling.

    Input (default spec): a 4 s log-mel at 16 kHz, 40 mels, n_fft 1024, hop 320 (50
    frames/s, 201 frames). With ``representation="waveform"`` it takes the waveform and
    applies :class:`~crossmodal.data.logmel.LogMel` itself. Each mel bin is normalised by
    BatchNorm (loudness differences between clips survive; no per-clip normalisation).
    Three 3×3 conv-BN-ReLU layers with strides (2,1), (2,2), (2,2) reduce 201 frames to
    51 steps (≈12.75/s, close to the video tower's 12 fps); the channels × remaining
    mel bins are flattened into one vector per step, then
    :class:`~crossmodal.encoders.temporal.TemporalConvNet` and ``pool`` as in
    ``video_tiny``. Output width: ``out_channels × num_bins`` for ``bins``, else
    ``out_channels``.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        seconds: float = 4.0,
        n_mels: int = 40,
        n_fft: int = 1024,
        hop_length: int = 320,
        representation: Literal["logmel", "waveform"] = "logmel",
        channels: tuple[int, ...] | list[int] = (16, 32, 32),
        temporal_channels: int = 64,
        temporal_layers: int = 3,
        out_channels: int = 32,
        pool: str = "bins",
        num_bins: int = 24,
    ) -> None:
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"channels must list 3 widths, got {channels}")
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
        strides = ((2, 1), (2, 2), (2, 2))
        layers: list[nn.Module] = []
        in_ch, mels, steps = 1, n_mels, self.audio_spec.num_mel_frames
        for out_ch, (sf, st) in zip(channels, strides, strict=True):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, (sf, st), 1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            in_ch, mels, steps = out_ch, (mels - 1) // sf + 1, (steps - 1) // st + 1
        self.conv = nn.Sequential(*layers)
        self.num_steps = steps
        self.temporal = TemporalConvNet(
            in_ch * mels, temporal_channels, temporal_layers, out_dim=out_channels
        )
        self.pool = build_temporal_pool(pool, out_channels, steps, num_bins=num_bins)
        self.output_dim = self.pool.output_dim

    def step_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Input batch → (B, C·mels', steps) before the temporal convs."""
        mel = self.frontend(audio) if self.frontend is not None else audio
        maps = self.conv(self.norm(mel).unsqueeze(1))
        b, c, f, t = maps.shape
        return maps.reshape(b, c * f, t)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        self.check_input(audio)
        steps = self.temporal(self.step_features(audio))
        return self.pool(steps.transpose(1, 2))
