"""Toy music videos coupled only through time: a flashing disc and a click track that
share tempo, beat phase and loudness envelope (one colour, one pitch for all clips)."""

from __future__ import annotations

import math

import torch

from crossmodal.data.logmel import LogMel
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.encoders import normalize_frames


def beat_clips(
    n: int, video_spec: VideoSpec, audio_spec: AudioSpec, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(video (n, 3, T, H, W) normalised per ``video_spec``, audio per ``audio_spec``).

    Tempo 70–160 BPM, random beat phase, and a slow random loudness envelope; the disc's
    brightness and the clicks' amplitude both follow ``loudness(t) · pulse(t)``.
    """
    bpm = 70 + 90 * torch.rand(n, generator=generator)
    period = 60 / bpm
    phase = torch.rand(n, generator=generator) * period
    rate = 0.2 + 0.5 * torch.rand(n, generator=generator)
    offset = 2 * math.pi * torch.rand(n, generator=generator)

    def envelope(t: torch.Tensor, decay: float) -> torch.Tensor:
        loudness = 0.55 + 0.4 * torch.sin(2 * math.pi * rate[:, None] * t + offset[:, None])
        since_beat = torch.remainder(t - phase[:, None], period[:, None])
        return loudness * torch.exp(-since_beat / decay)

    fps = video_spec.fps or video_spec.num_frames / audio_spec.seconds
    frame_times = torch.arange(video_spec.num_frames) / fps
    size = video_spec.height
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 4) ** 2).float()
    colour = torch.tensor([0.9, 0.5, 0.2]).view(1, 3, 1, 1, 1)
    brightness = envelope(frame_times, 0.1)[:, None, :, None, None]
    frames = colour * (0.15 + 0.8 * brightness * disc)
    frames = frames + 0.03 * torch.randn(frames.shape, generator=generator)
    video = normalize_frames(frames.clamp(0, 1), video_spec)

    sample_times = torch.arange(audio_spec.num_samples) / audio_spec.sample_rate
    tone = torch.sin(2 * math.pi * 440.0 * sample_times)
    wave = envelope(sample_times, 0.05) * tone
    wave = wave + 0.02 * torch.randn(wave.shape, generator=generator)
    audio = LogMel(audio_spec)(wave) if audio_spec.representation == "logmel" else wave
    return video, audio
