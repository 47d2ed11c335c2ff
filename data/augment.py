"""Training-time augmentations of a (video, music) window: frame crop/scale, colour
jitter, music gain, spectral tilt (EQ) and a noise floor.

Every transform is off at strength 0 (the input comes back unchanged), draws its random
numbers from a ``torch.Generator`` (torch's global one when none is given, which
:class:`~crossmodal.training.seeding.SeededItems` seeds per item), and is therefore a
function of the seed. What they leave alone matters as much as what they change: the
signal that pairs a video with its music is *when* things happen (beats, accents,
loudness against motion and flashes), so every transform is constant over the window
(one crop, one set of colour factors, one gain and tilt per clip); a per-frame change
would itself look like motion or a flash.

Music transforms act on log-mel power spectrograms (``log(mel + 1e-6)``, see
:class:`~crossmodal.data.logmel.LogMel`), where they are closed forms: a gain of g dB
adds ``g · ln(10) / 10`` to every cell; a tilt adds a line across the mel bins; a noise
floor adds power to every cell. So they apply to the finished windows the feature
cache keeps, with no decoding. A music encoder that takes the waveform gets the same
three in the time domain (:meth:`ClipAugment.waveform`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Natural-log units per dB of power: 10·log10(p) dB ↔ ln(p) = dB · ln(10) / 10.
LN_PER_DB = math.log(10.0) / 10.0
# ITU-R BT.601 luma weights: the grey level that saturation blends towards.
LUMA = (0.299, 0.587, 0.114)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def crop_frames(frames: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3): the same ``height × width`` region of every frame, resized back
    to H × W (bilinear, half-pixel centres), rounded to uint8."""
    _, h, w, _ = frames.shape
    if not (top >= 0 and top + height <= h and left >= 0 and left + width <= w):
        raise ValueError(f"crop {height}x{width} at ({top}, {left}) outside a {h}x{w} frame")
    region = frames[:, top : top + height, left : left + width]
    if (height, width) == (h, w):
        return np.ascontiguousarray(region)
    x = torch.from_numpy(np.ascontiguousarray(region)).permute(0, 3, 1, 2).float()
    out = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def colour_frames(
    frames: np.ndarray, brightness: float, contrast: float, saturation: float
) -> np.ndarray:
    """uint8 (T, H, W, 3) with brightness, contrast and saturation factors (1: unchanged),
    applied in that order: ``x·b``; ``(x − m)·c + m`` with m the clip's mean grey level;
    ``grey + (x − grey)·s`` per pixel. Rounded and clipped to uint8."""
    x = frames.astype(np.float32) * brightness
    luma = np.asarray(LUMA, dtype=np.float32)
    mean = float((x @ luma).mean())
    x = (x - mean) * contrast + mean
    grey = (x @ luma)[..., None]
    x = grey + (x - grey) * saturation
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def tilt_curve(n_mels: int, tilt_db: float) -> torch.Tensor:
    """(n_mels, 1) log-power offsets of a spectral tilt: −tilt_db at the lowest mel bin,
    +tilt_db at the highest, linear in the mel index between."""
    return (torch.linspace(-1.0, 1.0, n_mels) * tilt_db * LN_PER_DB).unsqueeze(-1)


def mel_tilt_gains(n_samples: int, sample_rate: int, tilt_db: float) -> torch.Tensor:
    """Amplitude factors of the rFFT bins of an ``n_samples`` window for a spectral tilt
    of the waveform: −tilt_db of power at 0 Hz, +tilt_db at the Nyquist frequency,
    linear in mel (HTK, 2595·log10(1 + f / 700)) between, as :func:`tilt_curve` is on
    log-mel bins."""
    freqs = torch.fft.rfftfreq(n_samples, d=1.0 / sample_rate, dtype=torch.float64)
    mel = 2595.0 * torch.log10(1.0 + freqs / 700.0)
    position = 2.0 * mel / (2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0)) - 1.0
    return (10.0 ** (position * tilt_db / 20.0)).float()


def add_noise_power(logmel: torch.Tensor, noise_power: torch.Tensor) -> torch.Tensor:
    """log-mel ``log(P + 1e-6)`` of power P → that of ``P + noise_power`` (cell-wise)."""
    return torch.log(torch.exp(logmel) + noise_power)


@dataclass(frozen=True)
class ClipAugment:
    """Seeded augmentations of one training window; every strength at 0 is off.

    - ``crop``: the frames are cut to one region of side ``f · size`` with
      f ~ U(1 − crop, 1) (same aspect), placed uniformly, and resized back: a zoom of
      up to 1 / (1 − crop) and a shift.
    - ``colour``: brightness, contrast and saturation factors, each ~ U(1 ± colour).
    - ``gain_db``: the music louder or softer by ~ U(± gain_db) dB.
    - ``eq_db``: a spectral tilt of ~ U(± eq_db) dB at the band edges (bass up and
      treble down, or the reverse).
    - ``noise``: a noise floor whose power is r ~ U(0, noise) times the window's mean
      mel power, with an exponential (χ² with two degrees of freedom, as a noise
      periodogram has) fluctuation per cell; ``noise`` 0.1 is a signal-to-noise ratio of
      10 dB at worst.
    """

    crop: float = 0.0
    colour: float = 0.0
    gain_db: float = 0.0
    eq_db: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("crop", "colour"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        for name in ("gain_db", "eq_db", "noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value}")

    @property
    def active(self) -> bool:
        """Whether any transform is on."""
        return self.video_active or self.music_active

    @property
    def video_active(self) -> bool:
        return self.crop > 0 or self.colour > 0

    @property
    def music_active(self) -> bool:
        return self.gain_db > 0 or self.eq_db > 0 or self.noise > 0

    def frames(self, frames: np.ndarray, generator: torch.Generator | None = None) -> np.ndarray:
        """uint8 (T, H, W, 3) → augmented uint8 frames of the same shape."""
        if frames.dtype != np.uint8 or frames.ndim != 4:
            raise TypeError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        if self.crop > 0:
            _, h, w, _ = frames.shape
            side = _uniform(1.0 - self.crop, 1.0, generator)
            ch, cw = max(round(side * h), 1), max(round(side * w), 1)
            top = int(torch.randint(0, h - ch + 1, (), generator=generator))
            left = int(torch.randint(0, w - cw + 1, (), generator=generator))
            frames = crop_frames(frames, top, left, ch, cw)
        if self.colour > 0:
            b, c, s = (_uniform(1 - self.colour, 1 + self.colour, generator) for _ in range(3))
            frames = colour_frames(frames, b, c, s)
        return frames

    def logmel(
        self, logmel: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Log-mel (n_mels, frames) → augmented log-mel (a new tensor when any is on)."""
        if logmel.dim() != 2:
            raise ValueError(f"expected (n_mels, frames), got shape {tuple(logmel.shape)}")
        if self.noise > 0:
            ratio = _uniform(0.0, self.noise, generator)
            level = ratio * float(torch.exp(logmel).mean())
            fluctuation = torch.empty_like(logmel).exponential_(generator=generator)
            logmel = add_noise_power(logmel, level * fluctuation)
        if self.eq_db > 0:
            tilt = _uniform(-self.eq_db, self.eq_db, generator)
            logmel = logmel + tilt_curve(logmel.shape[0], tilt).to(logmel)
        if self.gain_db > 0:
            logmel = logmel + _uniform(-self.gain_db, self.gain_db, generator) * LN_PER_DB
        return logmel

    def waveform(
        self, wave: torch.Tensor, sample_rate: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Waveform (samples,) → augmented waveform, for music encoders that take the
        waveform: the same three transforms, drawn in the same order, in the time domain
        (white noise of r ~ U(0, noise) times the window's mean power; the tilt through
        the FFT, linear in mel; the gain as a factor)."""
        if wave.dim() != 1:
            raise ValueError(f"expected (samples,), got shape {tuple(wave.shape)}")
        if self.noise > 0:
            ratio = _uniform(0.0, self.noise, generator)
            power = float(wave.double().pow(2).mean())
            noise = torch.randn(wave.shape, generator=generator, dtype=torch.float32)
            wave = wave + (math.sqrt(ratio * power) * noise).to(wave.dtype)
        if self.eq_db > 0:
            tilt = _uniform(-self.eq_db, self.eq_db, generator)
            gains = mel_tilt_gains(len(wave), sample_rate, tilt)
            wave = torch.fft.irfft(torch.fft.rfft(wave.float()) * gains, n=len(wave))
            wave = wave.to(torch.float32)
        if self.gain_db > 0:
            wave = wave * 10.0 ** (_uniform(-self.gain_db, self.gain_db, generator) / 20.0)
        return wave
