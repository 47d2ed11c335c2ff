"""Base classes every encoder derives from: what it takes in, what it gives out."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.errors import CrossmodalError

Modality = Literal["video", "music"]
# The modalities in the order every two-tower structure lists them.
MODALITIES: tuple[Modality, ...] = ("video", "music")


class EncoderInputError(CrossmodalError, ValueError):
    """A tensor that does not match the input an encoder declared in its spec."""


class Encoder(nn.Module):
    """A backbone mapping one clip representation to a feature vector (B, output_dim).

    Subclasses set ``modality``, ``output_dim`` and a spec (``video_spec`` or
    ``audio_spec``). The registry sets ``name`` and ``init_kwargs``: calling
    ``create_encoder(name, **init_kwargs)`` rebuilds the same architecture (random
    weights), which is how a saved model is rebuilt before its weights are loaded.
    """

    modality: ClassVar[Modality]
    output_dim: int
    name: str = ""
    init_kwargs: dict[str, Any]

    def example_input(
        self, batch_size: int = 2, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A random batch of the declared input (tests, benchmarks)."""
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one clip as the encoder takes it (without the batch dimension)."""
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`EncoderInputError` unless ``x`` is a float (B, *input_shape) batch."""
        expected = self.input_shape
        if not isinstance(x, torch.Tensor):
            raise EncoderInputError(f"{self.describe()} takes a tensor, got {type(x).__name__}")
        if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise EncoderInputError(
                f"{self.describe()} takes (B, {', '.join(map(str, expected))}) "
                f"({self.layout}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise EncoderInputError(f"{self.describe()} takes a float tensor, got {x.dtype}")

    @property
    def layout(self) -> str:
        """Names of the input dimensions, e.g. ``"B, C, T, H, W"``."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"encoder {self.name or type(self).__name__!r}"

    @property
    def clip_dim(self) -> int:
        """Width of :meth:`clip_view`."""
        return self.output_dim

    def clip_view(self, features: torch.Tensor) -> torch.Tensor:
        """(B, output_dim) features → (B, clip_dim): what describes the whole clip,
        wherever in time it happens (a fixed view, no parameters). A tower whose output
        keeps time (time bins, for sync) averages it out here; this default, for towers
        that pool time away, is the features themselves. The model's vibe heads read it
        with ``vibe_input: clip``: a mood is a property of the clip, and a head over
        time-binned features learns the training clips' timing instead."""
        return features

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


class VideoEncoder(Encoder):
    """Takes float frames (B, C=3, T, H, W) normalised with ``video_spec.mean``/``std``."""

    modality: ClassVar[Modality] = "video"
    video_spec: VideoSpec

    @property
    def spec(self) -> VideoSpec:
        return self.video_spec

    @property
    def input_shape(self) -> tuple[int, ...]:
        s = self.video_spec
        return (3, s.num_frames, s.height, s.width)

    @property
    def layout(self) -> str:
        return "B, C, T, H, W"

    def example_input(
        self, batch_size: int = 2, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Uniform [0, 1) frames, normalised as the spec says."""
        device = next(self.parameters(), torch.empty(0)).device
        frames = torch.rand(batch_size, *self.input_shape, generator=generator)
        return normalize_frames(frames, self.video_spec).to(device)


class MusicEncoder(Encoder):
    """Takes a waveform (B, S) or a log-mel (B, n_mels, frames), per ``audio_spec`` (the
    data layer's decoding spec: music files and video soundtracks decode the same way)."""

    modality: ClassVar[Modality] = "music"
    audio_spec: AudioSpec

    @property
    def spec(self) -> AudioSpec:
        return self.audio_spec

    @property
    def input_shape(self) -> tuple[int, ...]:
        s = self.audio_spec
        if s.representation == "waveform":
            return (s.num_samples,)
        return (s.n_mels, s.num_mel_frames)

    @property
    def layout(self) -> str:
        return "B, S" if self.audio_spec.representation == "waveform" else "B, n_mels, frames"

    def example_input(
        self, batch_size: int = 2, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Noise bursts over a decaying tone, as waveform or log-mel per the spec."""
        from crossmodal.data.logmel import LogMel

        device = next(self.parameters(), torch.empty(0)).device
        s = self.audio_spec
        t = torch.arange(s.num_samples) / s.sample_rate
        freq = 110.0 * 2 ** (4 * torch.rand(batch_size, 1, generator=generator))
        tone = torch.sin(2 * torch.pi * freq * t) * torch.exp(-t / s.seconds)
        noise = torch.randn(batch_size, s.num_samples, generator=generator)
        wave = (0.3 * tone + 0.1 * noise).clamp(-1.0, 1.0)
        if s.representation == "logmel":
            wave = LogMel(s)(wave)
        return wave.to(device)


def normalize_frames(frames: torch.Tensor, spec: VideoSpec) -> torch.Tensor:
    """(B, C, T, H, W) frames in [0, 1] → ``(frames - mean) / std`` per channel."""
    shape = (1, 3, 1, 1, 1)
    mean = torch.tensor(spec.mean, dtype=frames.dtype, device=frames.device).view(shape)
    std = torch.tensor(spec.std, dtype=frames.dtype, device=frames.device).view(shape)
    return (frames - mean) / std
