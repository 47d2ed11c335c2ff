"""Deterministic generated clips for the musicnn parity fixtures (numpy only).

Used twice: by :mod:`tools.musicnn_reference` (in a throwaway TensorFlow environment) to
feed the original model, and by the tests to check our front end on the same audio.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
SECONDS = 6.5  # 407 frames at hop 256: two 187-frame windows per clip


def _time() -> np.ndarray:
    return np.arange(round(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE


def chord() -> np.ndarray:
    """An A-minor triad with harmonics and a slow tremolo."""
    t = _time()
    wave = np.zeros_like(t)
    for f0 in (220.0, 261.63, 329.63):
        for k in range(1, 5):
            wave += 0.03 / k * np.sin(2 * np.pi * f0 * k * t)
    return wave * (0.75 + 0.25 * np.sin(2 * np.pi * 0.5 * t))


def drums() -> np.ndarray:
    """Kick on every beat and hi-hat noise on the off-beats, 120 bpm."""
    t = _time()
    rng = np.random.default_rng(7)
    wave = np.zeros_like(t)
    beat = 0.5
    for start in np.arange(0.0, SECONDS, beat):
        local = t - start
        on = (local >= 0) & (local < 0.3)
        sweep = 120.0 * np.exp(-local[on] * 8) + 45.0
        wave[on] += (
            0.2 * np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * np.exp(-local[on] * 10)
        )
        hat = (local >= beat / 2) & (local < beat / 2 + 0.05)
        wave[hat] += 0.05 * rng.standard_normal(hat.sum()) * np.exp(-(local[hat] - beat / 2) * 60)
    return wave


def sweep() -> np.ndarray:
    """A logarithmic chirp from 100 Hz to 4 kHz with a little noise."""
    t = _time()
    rng = np.random.default_rng(3)
    rate = np.log(4000.0 / 100.0) / SECONDS
    phase = 2 * np.pi * 100.0 * (np.exp(rate * t) - 1) / rate
    return 0.08 * np.sin(phase) + 0.005 * rng.standard_normal(t.size)


def quiet_noise() -> np.ndarray:
    """Low-level noise, low-passed by a running mean (a soft, dark texture)."""
    rng = np.random.default_rng(11)
    noise = rng.standard_normal(round(SECONDS * SAMPLE_RATE))
    return 0.02 * np.convolve(noise, np.ones(8) / 8, mode="same")


def loud() -> np.ndarray:
    """A full-scale bass line: its mel power overflows the original's float16 step."""
    t = _time()
    f0 = np.where((t % 1.0) < 0.5, 55.0, 73.42)
    return 0.9 * np.sin(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE)


CLIPS = {"chord": chord, "drums": drums, "sweep": sweep, "quiet_noise": quiet_noise, "loud": loud}


def make_clip(name: str) -> np.ndarray:
    """Clip ``name`` as float32 mono at 16 kHz."""
    return CLIPS[name]().astype(np.float32)
