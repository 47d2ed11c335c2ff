"""What a clip looks like on its way into an encoder.

Encoders declare the input they expect with these specs; datasets, the feature cache and
the retrieval indexer read the same specs to decode media accordingly. They are plain
frozen dataclasses so that they serialise into configs and checkpoints as dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# ImageNet statistics: torchvision and most video backbones expect frames normalised so.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class VideoSpec:
    """Frames an encoder takes: ``num_frames`` frames of ``height``×``width``.

    ``fps`` set: frames are taken at that rate from the window start (the window lasts
    ``num_frames / fps`` seconds). ``fps`` None: ``num_frames`` frames spread uniformly
    over the window. Tensors reach the encoder as float (B, C, T, H, W) normalised with
    ``mean``/``std`` (values in [0, 1] before normalising).
    """

    num_frames: int = 8
    height: int = 112
    width: int = 112
    fps: float | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoSpec:
        d = dict(d)
        for key in ("mean", "std"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class AudioSpec:
    """Sound an encoder takes: mono audio at ``sample_rate``, ``seconds`` long.

    ``representation`` "waveform": float (B, S) with S = seconds × sample_rate, in [-1, 1].
    ``representation`` "logmel": float (B, n_mels, frames), natural log of the mel power
    spectrogram (+1e-6), computed by :class:`crossmodal.data.logmel.LogMel` from this spec.
    """

    sample_rate: int = 16000
    seconds: float = 4.0
    representation: Literal["waveform", "logmel"] = "logmel"
    n_mels: int = 64
    n_fft: int = 1024
    hop_length: int = 160
    f_min: float = 20.0
    f_max: float | None = None

    @property
    def num_samples(self) -> int:
        return round(self.seconds * self.sample_rate)

    @property
    def num_mel_frames(self) -> int:
        # torchaudio's MelSpectrogram with center=True
        return self.num_samples // self.hop_length + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioSpec:
        return cls(**d)
