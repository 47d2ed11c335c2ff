from __future__ import annotations

import math

import torch

from crossmodal.data.logmel import LogMel
from crossmodal.data.specs import AudioSpec, VideoSpec


def test_specs_round_trip_through_dicts() -> None:
    video = VideoSpec(num_frames=4, height=64, width=96, fps=6.0)
    audio = AudioSpec(sample_rate=8000, seconds=2.0, representation="waveform")
    assert VideoSpec.from_dict(video.to_dict()) == video
    assert AudioSpec.from_dict(audio.to_dict()) == audio


def test_logmel_shape_and_tone_lands_in_the_right_band() -> None:
    spec = AudioSpec(sample_rate=16000, seconds=1.0, n_mels=64)
    t = torch.arange(spec.num_samples) / spec.sample_rate
    low = torch.sin(2 * math.pi * 220.0 * t)
    high = torch.sin(2 * math.pi * 4000.0 * t)
    mel = LogMel(spec)(torch.stack([low, high]))
    assert mel.shape == (2, spec.n_mels, spec.num_mel_frames)
    band_low = mel[0].mean(dim=1).argmax().item()
    band_high = mel[1].mean(dim=1).argmax().item()
    assert band_low < band_high
    # silence is log(1e-6), not -inf
    silent = LogMel(spec)(torch.zeros(spec.num_samples))
    assert torch.isfinite(silent).all()
    assert torch.allclose(silent, torch.full_like(silent, math.log(1e-6)))
