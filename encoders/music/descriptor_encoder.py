"""A small network over librosa music descriptors."""

from __future__ import annotations

import torch
from torch import nn

from crossmodal.data.specs import AudioSpec
from crossmodal.encoders.base import MusicEncoder
from crossmodal.encoders.music.descriptors import (
    compute_descriptors_batch,
    descriptor_names,
    num_frames,
)
from crossmodal.encoders.temporal import (
    TemporalConvNet,
    build_temporal_pool,
    pooled_clip_dim,
    pooled_clip_view,
)


class DescriptorEncoder(MusicEncoder):
    """Waveform → librosa descriptors (tempo, onset and beat envelopes, loudness, chroma,
    MFCC, spectral contrast; see :func:`~crossmodal.encoders.music.descriptors.compute_descriptors`)
    → a small network.

    :meth:`descriptors` runs librosa on the CPU (no gradient) and gives (B, F, frames);
    the trainable rest is per-row BatchNorm, then the concatenation of (a) each row's mean and (b) standard deviation
    over time (directly interpretable, one value per named descriptor) and (c) a
    :class:`~crossmodal.encoders.temporal.TemporalConvNet` (``channels`` wide) pooled by
    ``pool`` (``mean`` by default; ``bins`` keeps rhythm position). Output width
    ``2F + channels`` (or ``2F + channels × num_bins``).

    Default input: a 4 s, 16 kHz waveform; descriptors at a 512-sample hop (126 frames).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        seconds: float = 4.0,
        hop_length: int = 512,
        n_fft: int = 2048,
        n_mfcc: int = 13,
        channels: int = 64,
        temporal_layers: int = 3,
        pool: str = "mean",
        num_bins: int = 8,
    ) -> None:
        super().__init__()
        self.audio_spec = AudioSpec(
            sample_rate=sample_rate, seconds=seconds, representation="waveform"
        )
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.n_mfcc = n_mfcc
        self.names = descriptor_names(n_mfcc)
        self.num_descriptor_frames = num_frames(self.audio_spec.num_samples, hop_length)
        rows = len(self.names)
        self.norm = nn.BatchNorm1d(rows)
        self.temporal = TemporalConvNet(rows, channels, temporal_layers)
        self.pool = build_temporal_pool(
            pool, channels, self.num_descriptor_frames, num_bins=num_bins
        )
        self.output_dim = 2 * rows + self.pool.output_dim

    @property
    def descriptor_shape(self) -> tuple[int, int]:
        """(F, frames) of one clip's descriptors."""
        return (len(self.names), self.num_descriptor_frames)

    def descriptors(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveforms (B, S) → descriptors (B, F, frames), float32 on the input's device."""
        self.check_input(audio)
        array = compute_descriptors_batch(
            audio.detach().float().cpu().numpy(),
            self.audio_spec.sample_rate,
            hop_length=self.hop_length,
            n_fft=self.n_fft,
            n_mfcc=self.n_mfcc,
        )
        return torch.from_numpy(array).to(audio.device)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.descriptors(audio))
        steps = self.temporal(x)
        return torch.cat([x.mean(dim=2), x.std(dim=2), self.pool(steps.transpose(1, 2))], dim=1)

    @property
    def clip_dim(self) -> int:
        return self.output_dim - self.pool.output_dim + pooled_clip_dim(self.pool)

    def clip_view(self, features: torch.Tensor) -> torch.Tensor:
        """The descriptors' statistics as they are, then the time bins' mean: see
        :meth:`Encoder.clip_view`."""
        stats = self.output_dim - self.pool.output_dim
        pooled = pooled_clip_view(self.pool, features[:, stats:])
        return torch.cat([features[:, :stats], pooled], dim=-1)
