from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crossmodal.data import AudioSpec, ClipAugment, LogMel
from crossmodal.data.augment import (
    LN_PER_DB,
    add_noise_power,
    colour_frames,
    crop_frames,
    mel_tilt_gains,
    tilt_curve,
)

SPEC = AudioSpec(sample_rate=8000, seconds=1.0, n_mels=24, n_fft=256, hop_length=80)


def _frames(seed: int = 0, t: int = 3, h: int = 12, w: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _logmel(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    wave = (0.3 * rng.standard_normal(SPEC.num_samples)).astype(np.float32)
    return LogMel(SPEC)(torch.from_numpy(wave))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_strength_zero_is_identity() -> None:
    frames, mel = _frames(), _logmel()
    off = ClipAugment()
    assert not off.active
    np.testing.assert_array_equal(off.frames(frames, _gen(0)), frames)
    assert torch.equal(off.logmel(mel, _gen(0)), mel)


@pytest.mark.parametrize(
    "aug",
    [
        ClipAugment(crop=0.3),
        ClipAugment(colour=0.4),
        ClipAugment(gain_db=6),
        ClipAugment(eq_db=6),
        ClipAugment(noise=0.2),
        ClipAugment(0.3, 0.4, 6, 6, 0.2),
    ],
)
def test_deterministic_given_seed_and_shapes_kept(aug: ClipAugment) -> None:
    frames, mel = _frames(), _logmel()
    a_frames, a_mel = aug.frames(frames, _gen(5)), aug.logmel(mel, _gen(5))
    b_frames, b_mel = aug.frames(frames, _gen(5)), aug.logmel(mel, _gen(5))
    np.testing.assert_array_equal(a_frames, b_frames)
    assert torch.equal(a_mel, b_mel)
    assert a_frames.shape == frames.shape
    assert a_frames.dtype == np.uint8
    assert a_mel.shape == mel.shape
    assert torch.isfinite(a_mel).all()
    # Another seed draws another transform (of whichever modality the augment touches).
    c_frames, c_mel = aug.frames(frames, _gen(6)), aug.logmel(mel, _gen(6))
    assert not (np.array_equal(a_frames, c_frames) and torch.equal(a_mel, c_mel))
    # The global generator is the default source: seeding it repeats the draw.
    torch.manual_seed(5)
    d_frames = aug.frames(frames)
    torch.manual_seed(5)
    d_mel = aug.logmel(mel)
    np.testing.assert_array_equal(a_frames, d_frames)
    assert torch.equal(a_mel, d_mel)


def test_crop_whole_frame_is_identity_and_half_crop_matches_bilinear_by_hand() -> None:
    frames = _frames(1, t=2, h=4, w=6)
    np.testing.assert_array_equal(crop_frames(frames, 0, 0, 4, 6), frames)
    # A 2×3 region scaled ×2: output pixel i samples the source at (i + 0.5)/2 − 0.5,
    # clamped to the region (half-pixel centres).
    top, left = 1, 2
    out = crop_frames(frames, top, left, 2, 3)
    region = frames[:, top : top + 2, left : left + 3].astype(np.float64)

    def sample(axis_len: int, i: int) -> tuple[int, int, float]:
        x = min(max((i + 0.5) / 2 - 0.5, 0.0), axis_len - 1)
        lo = math.floor(x)
        hi = min(lo + 1, axis_len - 1)
        return lo, hi, x - lo

    expected = np.zeros(frames.shape, dtype=np.float64)
    for y in range(4):
        y0, y1, wy = sample(2, y)
        for x in range(6):
            x0, x1, wx = sample(3, x)
            expected[:, y, x] = (
                (1 - wy) * (1 - wx) * region[:, y0, x0]
                + (1 - wy) * wx * region[:, y0, x1]
                + wy * (1 - wx) * region[:, y1, x0]
                + wy * wx * region[:, y1, x1]
            )
    assert np.abs(out.astype(np.float64) - expected).max() <= 0.5 + 1e-4
    with pytest.raises(ValueError, match="outside"):
        crop_frames(frames, 3, 0, 2, 3)


def test_crop_is_one_region_for_every_frame() -> None:
    # Frames that differ only by a constant: the crop must keep that difference.
    base = _frames(2, t=1, h=16, w=16)[0].astype(np.int16)
    frames = np.stack([np.clip(base, 0, 200), np.clip(base, 0, 200) + 40]).astype(np.uint8)
    out = ClipAugment(crop=0.4).frames(frames, _gen(3)).astype(np.int16)
    assert not np.array_equal(out[0], frames[0])
    assert np.abs(out[1] - out[0] - 40).max() <= 1


def test_colour_matches_the_formula_on_one_pixel() -> None:
    frames = np.array([[[[200, 100, 50], [10, 20, 30]]]], dtype=np.uint8)  # (1, 1, 2, 3)
    b, c, s = 1.1, 0.8, 0.5
    out = colour_frames(frames, b, c, s)
    x = frames.astype(np.float64) * b
    luma = np.array([0.299, 0.587, 0.114])
    mean = (x @ luma).mean()
    x = (x - mean) * c + mean
    grey = (x @ luma)[..., None]
    want = np.clip(np.rint(grey + (x - grey) * s), 0, 255)
    np.testing.assert_array_equal(out, want.astype(np.uint8))
    np.testing.assert_array_equal(colour_frames(frames, 1.0, 1.0, 1.0), frames)
    # Saturation 0 leaves grey pixels: the three channels equal (up to rounding).
    grey_only = colour_frames(_frames(4), 1.0, 1.0, 0.0).astype(int)
    assert np.abs(grey_only - grey_only[..., :1]).max() <= 1


def test_gain_in_logmel_equals_the_logmel_of_a_scaled_waveform() -> None:
    # Independent reference: the log-mel of the waveform scaled by the same gain.
    wave = torch.from_numpy(
        (0.2 * np.random.default_rng(7).standard_normal(SPEC.num_samples)).astype(np.float32)
    )
    mel = LogMel(SPEC)(wave)
    aug = ClipAugment(gain_db=6.0)
    out = aug.logmel(mel, _gen(11))
    gain_db = float(((out - mel).mean()) / LN_PER_DB)
    assert -6.0 <= gain_db <= 6.0
    assert abs(gain_db) > 1e-3
    scaled = LogMel(SPEC)(wave * 10 ** (gain_db / 20))
    loud = mel > math.log(1e-3)  # far above the 1e-6 floor
    torch.testing.assert_close(out[loud], scaled[loud], atol=1e-3, rtol=0)


def test_eq_tilt_is_a_line_across_mel_bins() -> None:
    curve = tilt_curve(5, 10.0).squeeze(-1)
    want = torch.tensor([-10.0, -5.0, 0.0, 5.0, 10.0]) * math.log(10) / 10
    torch.testing.assert_close(curve, want)
    mel = _logmel(3)
    out = ClipAugment(eq_db=8.0).logmel(mel, _gen(2))
    diff = out - mel
    # Constant over time, linear over mel bins, within ±8 dB at the edges.
    torch.testing.assert_close(diff, diff[:, :1].expand_as(diff))
    steps = diff[1:, 0] - diff[:-1, 0]
    torch.testing.assert_close(steps, steps[:1].expand_as(steps), atol=1e-5, rtol=0)
    assert float(diff[:, 0].abs().max()) <= 8.0 * LN_PER_DB + 1e-5


def test_noise_adds_power_at_the_drawn_level() -> None:
    mel = _logmel(4)
    power = torch.exp(mel)
    torch.testing.assert_close(add_noise_power(mel, torch.zeros_like(mel)), mel)
    floor = torch.full_like(mel, 0.25)
    torch.testing.assert_close(torch.exp(add_noise_power(mel, floor)), power + 0.25)
    out = ClipAugment(noise=0.5).logmel(mel, _gen(9))
    added = torch.exp(out) - power
    assert bool((added >= -1e-5 * power).all())
    # Mean added power: r × mean power with r ≤ 0.5 (exponential fluctuation of mean 1).
    ratio = float(added.mean() / power.mean())
    assert 0 < ratio <= 0.5 * 1.15


def _wave(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((0.3 * rng.standard_normal(SPEC.num_samples)).astype(np.float32))


def test_waveform_transforms_are_off_at_zero_and_seeded() -> None:
    wave = _wave()
    assert torch.equal(ClipAugment().waveform(wave, SPEC.sample_rate, _gen(0)), wave)
    aug = ClipAugment(gain_db=6, eq_db=6, noise=0.2)
    a = aug.waveform(wave, SPEC.sample_rate, _gen(3))
    assert torch.equal(a, aug.waveform(wave, SPEC.sample_rate, _gen(3)))
    assert not torch.equal(a, aug.waveform(wave, SPEC.sample_rate, _gen(4)))
    assert a.shape == wave.shape
    assert a.dtype == torch.float32


def test_waveform_gain_scales_the_samples() -> None:
    wave = _wave(1)
    out = ClipAugment(gain_db=6.0).waveform(wave, SPEC.sample_rate, _gen(11))
    factor = float((out @ wave) / (wave @ wave))
    torch.testing.assert_close(out, wave * factor)
    gain_db = 20 * math.log10(factor)
    assert 1e-3 < abs(gain_db) <= 6.0
    # The log-mel path draws the same gain from the same seed.
    mel_gain = ClipAugment(gain_db=6.0).logmel(_logmel(1), _gen(11)) - _logmel(1)
    assert abs(float(mel_gain.mean()) / LN_PER_DB - gain_db) < 1e-4


def test_waveform_tilt_follows_the_mel_line_on_pure_tones() -> None:
    # Two tones on exact FFT bins: each comes out scaled by 10^(tilt · position / 20),
    # position = −1 … +1 linear in HTK mel from 0 Hz to Nyquist (worked out here).
    sr, n = SPEC.sample_rate, SPEC.num_samples
    t = torch.arange(n, dtype=torch.float64) / sr
    low, high = 250.0, 3000.0  # integer cycles in one second
    wave = (torch.sin(2 * math.pi * low * t) + torch.sin(2 * math.pi * high * t)).float()
    tilt = 7.5
    gains = mel_tilt_gains(n, sr, tilt)
    out = torch.fft.irfft(torch.fft.rfft(wave) * gains, n=n)

    def expected(f: float) -> float:
        def mel(x: float) -> float:
            return 2595 * math.log10(1 + x / 700)

        return 10 ** ((2 * mel(f) / mel(sr / 2) - 1) * tilt / 20)

    spectrum = torch.fft.rfft(out).abs() / (n / 2)
    assert abs(float(spectrum[int(low)]) - expected(low)) < 1e-3
    assert abs(float(spectrum[int(high)]) - expected(high)) < 1e-3
    assert float(gains[0]) == pytest.approx(10 ** (-tilt / 20), rel=1e-5)
    assert float(gains[-1]) == pytest.approx(10 ** (tilt / 20), rel=1e-5)
    # Through the transform: the tone ratio moves by a drawn tilt within ±eq_db.
    aug = ClipAugment(eq_db=8.0).waveform(wave, sr, _gen(2))
    spec_aug = torch.fft.rfft(aug).abs() / (n / 2)
    ratio_db = 20 * math.log10(float(spec_aug[int(high)] / spec_aug[int(low)]))
    span = 2 * (2595 * math.log10(1 + high / 700) - 2595 * math.log10(1 + low / 700))
    span /= 2595 * math.log10(1 + sr / 2 / 700)
    assert abs(ratio_db) <= 8.0 * span + 1e-3
    assert abs(ratio_db) > 1e-3


def test_waveform_noise_adds_white_noise_at_the_drawn_level() -> None:
    wave = _wave(4)
    out = ClipAugment(noise=0.5).waveform(wave, SPEC.sample_rate, _gen(9))
    added = out - wave
    ratio = float(added.pow(2).mean() / wave.pow(2).mean())
    assert 0 < ratio <= 0.5 * 1.1
    # White and independent of the signal: flat spectrum, no correlation with the input.
    assert abs(float(torch.corrcoef(torch.stack([added, wave]))[0, 1])) < 0.1
    band = torch.fft.rfft(added).abs().pow(2)
    halves = band[1 : len(band) // 2].mean(), band[len(band) // 2 : -1].mean()
    assert 0.8 < float(halves[0] / halves[1]) < 1.25


def test_bad_strengths_are_refused() -> None:
    with pytest.raises(ValueError, match="crop"):
        ClipAugment(crop=1.0)
    with pytest.raises(ValueError, match="noise"):
        ClipAugment(noise=-0.1)
    with pytest.raises(TypeError, match="uint8"):
        ClipAugment(crop=0.2).frames(np.zeros((2, 4, 4, 3), dtype=np.float32))
