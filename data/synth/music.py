"""Render a :class:`~crossmodal.data.synth.score.Score` to a mono waveform.

Melody notes are additive tones whose partials define the instrument's timbre; a soft
tick marks every beat, a kick marks every accent, a quiet pad holds the key's triad
(major or minor). Everything is multiplied by the loudness envelope and the break gate,
then scaled to a random peak level (so absolute loudness says nothing about the clip)
and a faint noise floor is added.
"""

from __future__ import annotations

import numpy as np

from crossmodal.data.synth.score import Score

# (frequency ratio, amplitude) of each instrument's partials, and its note decay time (s);
# None = the note sustains until its end.
INSTRUMENTS: dict[str, tuple[tuple[tuple[float, float], ...], float | None]] = {
    "sine": (((1.0, 1.0), (2.0, 0.08)), None),
    "triangle": (((1.0, 1.0), (3.0, 1 / 9), (5.0, 1 / 25), (7.0, 1 / 49)), None),
    "square": (tuple((float(n), 1.0 / n) for n in (1, 3, 5, 7, 9, 11)), None),
    "saw": (tuple((float(n), 1.0 / n) for n in range(1, 11)), None),
    "pluck": (tuple((float(n), 1.0 / n) for n in range(1, 9)), 0.18),
    "bell": (((1.0, 1.0), (2.76, 0.6), (5.4, 0.4), (8.93, 0.25)), 0.6),
}

ATTACK = 0.008
RELEASE = 0.03


def midi_to_hz(pitch: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(pitch) - 69.0) / 12.0)


def _tone(
    freq: float, n: int, sr: int, partials: tuple[tuple[float, float], ...], decay: float | None
) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    out = np.zeros(n, dtype=np.float32)
    for k, (ratio, amp) in enumerate(partials):
        f = freq * ratio
        if f >= 0.45 * sr:
            break
        partial = np.float32(amp) * np.sin(np.float32(2 * np.pi * f) * t)
        if decay is not None:
            # Higher partials die faster, as on a plucked string.
            partial *= np.exp(-t * np.float32((1.0 + 0.5 * k) / decay))
        out += partial
    return out


def _note_envelope(n: int, sr: int) -> np.ndarray:
    env = np.ones(n, dtype=np.float32)
    a = min(n, max(1, int(ATTACK * sr)))
    r = min(n - a, max(1, int(RELEASE * sr)))
    env[:a] = np.linspace(0.0, 1.0, a, dtype=np.float32)
    if r > 0:
        env[n - r :] = np.linspace(1.0, 0.0, r, dtype=np.float32)
    return env


def _add(signal: np.ndarray, start: int, chunk: np.ndarray) -> None:
    end = min(len(signal), start + len(chunk))
    if end > start:
        signal[start:end] += chunk[: end - start]


def render_music(score: Score, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """float32 mono waveform of ``round(duration × sample_rate)`` samples in [-1, 1]."""
    sr = sample_rate
    n = round(score.duration * sr)
    music = np.zeros(n, dtype=np.float32)
    partials, decay = INSTRUMENTS[score.instrument]

    for onset, length, pitch, velocity in zip(
        score.note_onsets,
        score.note_lengths,
        score.note_pitches,
        score.note_velocities,
        strict=True,
    ):
        m = max(2, int(length * sr))
        tone = _tone(float(midi_to_hz(pitch)), m, sr, partials, decay)
        _add(music, round(onset * sr), np.float32(velocity) * tone * _note_envelope(m, sr))

    # Pad: the key's triad one octave below the root, quiet and sustained.
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    third = 4 if score.major else 3
    for interval in (0, third, 7):
        f = float(midi_to_hz(score.root - 12 + interval))
        music += np.float32(0.05) * np.sin(np.float32(2 * np.pi * f) * t)

    # Beat tick (high-passed noise) on every beat; kick (falling sine) on every accent.
    m_tick = int(0.04 * sr)
    t_tick = np.arange(m_tick, dtype=np.float32) / np.float32(sr)
    for beat in score.beat_times:
        noise = rng.standard_normal(m_tick + 1).astype(np.float32)
        tick = np.diff(noise) * np.exp(-t_tick / np.float32(0.012))
        _add(music, round(beat * sr), np.float32(0.12 * score.drums) * tick)
    m_kick = int(0.25 * sr)
    t_kick = np.arange(m_kick, dtype=np.float32) / np.float32(sr)
    kick_freq = 50.0 + 110.0 * np.exp(-t_kick / np.float32(0.04))
    kick_phase = np.float32(2 * np.pi) * np.cumsum(kick_freq) / np.float32(sr)
    kick = np.sin(kick_phase) * np.exp(-t_kick / np.float32(0.1))
    for accent in score.accent_times:
        click = rng.standard_normal(m_kick).astype(np.float32) * np.exp(-t_kick / np.float32(0.01))
        _add(music, round(accent * sr), np.float32(0.4 + score.drums) * (kick + 0.3 * click))

    times = np.arange(n, dtype=np.float64) / sr
    music *= (score.envelope(times) * score.gate(times, ramp=0.015)).astype(np.float32)
    peak = float(np.abs(music).max())
    if peak > 0:
        music *= np.float32(rng.uniform(0.3, 0.9) / peak)
    music += np.float32(rng.uniform(0.001, 0.006)) * rng.standard_normal(n).astype(np.float32)
    return np.clip(music, -1.0, 1.0)
