"""Log-mel front-end shared by the data pipeline, the feature cache and the music encoders."""

from __future__ import annotations

import torch
from torch import nn

from crossmodal.data.specs import AudioSpec


class LogMel(nn.Module):
    """Waveform (..., S) → log mel power spectrogram (..., n_mels, frames).

    A module so that it follows the waveform's device (GPU when there is one) and can sit
    inside an encoder. ``log(mel + 1e-6)``; no per-clip normalisation (encoders normalise).
    """

    def __init__(self, spec: AudioSpec) -> None:
        super().__init__()
        import torchaudio

        self.spec = spec
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=spec.sample_rate,
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            f_min=spec.f_min,
            f_max=spec.f_max,
            n_mels=spec.n_mels,
            power=2.0,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(waveform.float()) + 1e-6)
