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

    ``summary_lags`` > 0 adds a clip-level summary beside the pooled steps, for what a
    piece *is* rather than when its events fall (mood, genre): each normalised mel bin's
    mean and standard deviation over the clip (register, timbre, loudness, dynamics) and
    the autocorrelation of the onset envelope (the mean positive change over mel bins)
    at lags 1 … ``summary_lags`` frames (its periodicity: tempo and metre, read
    at every octave at once). Parameter-free up to the input BatchNorm; then BatchNorm →
    Linear → ReLU to ``summary_dim`` values appended to the output (width
    ``+ summary_dim``). The convolutional path alone sees about a second at a time and
    pools by position, so it learns these clip-wide statistics poorly (on the synthetic
    corpus's 840 training clips a linear classifier on the summary names the mood of
    0.75 of test clips, the trained convolutional tower 0.63; bench/results/mood_ceiling.md).
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
        summary_lags: int = 0,
        summary_dim: int = 64,
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
        frames = self.audio_spec.num_mel_frames
        if summary_lags < 0 or summary_dim < 1:
            raise ValueError(
                f"summary_lags must be >= 0 and summary_dim >= 1, got {summary_lags}, {summary_dim}"
            )
        if summary_lags and summary_lags >= frames - 1:
            raise ValueError(
                f"summary_lags={summary_lags} must be below the {frames - 1} onset frames of a clip"
            )
        self.summary_lags = summary_lags
        self.summary: nn.Module | None = None
        if summary_lags:
            width = 2 * n_mels + summary_lags
            self.summary = nn.Sequential(
                nn.BatchNorm1d(width), nn.Linear(width, summary_dim), nn.ReLU(inplace=True)
            )
            self.output_dim += summary_dim

    def _normalised_mel(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.frontend(audio) if self.frontend is not None else audio
        return self.norm(mel)

    def _maps_to_steps(self, mel: torch.Tensor) -> torch.Tensor:
        maps = self.conv(mel.unsqueeze(1))
        b, c, f, t = maps.shape
        return maps.reshape(b, c * f, t)

    def step_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Input batch → (B, C·mels', steps) before the temporal convs."""
        return self._maps_to_steps(self._normalised_mel(audio))

    def clip_statistics(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel (B, mels, frames) → (B, 2·mels + summary_lags): per-bin mean
        and standard deviation over time, then the onset envelope's autocorrelation at
        lags 1 … summary_lags divided by its lag-0 value (0 for a clip without change)."""
        mean = mel.mean(-1)
        std = mel.std(-1)
        onset = torch.relu(mel[..., 1:] - mel[..., :-1]).mean(1)  # (B, frames - 1)
        onset = onset - onset.mean(-1, keepdim=True)
        n = onset.shape[-1]
        # Autocorrelation through the FFT, zero-padded to 2n so lags do not wrap around.
        spectrum = torch.fft.rfft(onset.float(), n=2 * n)
        acf = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=2 * n)[..., :n]
        lags = acf[..., 1 : self.summary_lags + 1] / acf[..., :1].clamp_min(1e-6)
        return torch.cat([mean, std, lags.to(mean.dtype)], dim=-1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        self.check_input(audio)
        mel = self._normalised_mel(audio)
        steps = self.temporal(self._maps_to_steps(mel))
        pooled = self.pool(steps.transpose(1, 2))
        if self.summary is None:
            return pooled
        return torch.cat([pooled, self.summary(self.clip_statistics(mel))], dim=-1)
