"""Render a :class:`~crossmodal.data.synth.score.Score` to a mono waveform.

Melody notes are additive tones whose partials define the instrument's timbre; a soft
tick marks every beat, a kick marks every accent, a quiet pad holds the key's triad
(major or minor). Everything is multiplied by the loudness envelope and the break gate,
then scaled to a random peak level (so absolute loudness says nothing about the clip)
and a faint noise floor is added.

``timbres="alt"`` plays every melody with an alternative instrument (``ALT_INSTRUMENTS``,
one per default instrument, ``ALT_OF``): the same score and moods, a different sound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
TIMBRE_SETS = ("default", "alt")


@dataclass(frozen=True)
class Timbre:
    """An alternative instrument: ``partials`` (frequency ratio, amplitude), ``decay``
    (note decay time in s, None = sustained), ``attack`` (s of linear rise), ``vibrato``
    (rate in Hz, depth as a fraction of the frequency) and ``detune`` (cents of each
    voice of a chorus; one voice at 0 = none)."""

    partials: tuple[tuple[float, float], ...]
    decay: float | None = None
    attack: float = ATTACK
    vibrato: tuple[float, float] = (0.0, 0.0)
    detune: tuple[float, ...] = (0.0,)


ALT_INSTRUMENTS: dict[str, Timbre] = {
    # Soft detuned chorus with a slow swell: octave and twelfth well above a sine's.
    "pad": Timbre(((1.0, 1.0), (2.0, 0.35), (3.0, 0.2)), attack=0.08, detune=(-9.0, 0.0, 9.0)),
    # Odd partials that fall off slower than a triangle's, with vibrato.
    "clarinet": Timbre(
        ((1.0, 1.0), (3.0, 0.6), (5.0, 0.4), (7.0, 0.25), (9.0, 0.15)), vibrato=(5.5, 0.006)
    ),
    # Drawbar organ: odd and even partials, strong octaves (a square has no even ones).
    "organ": Timbre(((1.0, 1.0), (2.0, 0.8), (3.0, 0.3), (4.0, 0.6), (6.0, 0.2), (8.0, 0.35))),
    # Bright and slow to speak: partials peak at the 3rd (a saw's fall from the 1st as 1/n).
    "brass": Timbre(
        tuple((float(n), n / 3 * math.exp(1 - n / 3)) for n in range(1, 13)), attack=0.06
    ),
    # Plucked string with a long ring and a dark spectrum (1/n², slightly stretched).
    "harp": Timbre(tuple((n * (1 + 0.0008 * n * n), 1.0 / n**2) for n in range(1, 7)), 0.5),
    # Wooden bar: a few inharmonic partials that die fast.
    "marimba": Timbre(((1.0, 1.0), (3.93, 0.5), (9.54, 0.2)), 0.12, attack=0.002),
}

# Default instrument → its alternative, one to one, soft for soft and bright for bright.
ALT_OF = {
    "sine": "pad",
    "triangle": "clarinet",
    "square": "organ",
    "saw": "brass",
    "pluck": "harp",
    "bell": "marimba",
}


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


def _alt_tone(freq: float, n: int, sr: int, timbre: Timbre) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    rate, depth = timbre.vibrato
    # Phase of a tone whose frequency swings by ±depth at ``rate`` Hz (0 depth: none).
    warp = t
    if depth > 0:
        swing = np.float32(depth / (2 * np.pi * rate))
        warp = t + swing * (1 - np.cos(np.float32(2 * np.pi * rate) * t))
    out = np.zeros(n, dtype=np.float32)
    for cents in timbre.detune:
        voice_freq = freq * 2.0 ** (cents / 1200)
        for k, (ratio, amp) in enumerate(timbre.partials):
            f = voice_freq * ratio
            if f >= 0.45 * sr:
                break
            partial = np.float32(amp) * np.sin(np.float32(2 * np.pi * f) * warp)
            if timbre.decay is not None:
                partial *= np.exp(-t * np.float32((1.0 + 0.5 * k) / timbre.decay))
            out += partial
    return out / np.float32(len(timbre.detune))


def _note_parts(
    instrument: str, pitch: float, length: float, sr: int, timbres: str
) -> tuple[np.ndarray, np.ndarray]:
    """(tone, envelope) of one note, kept apart so that the default path multiplies
    velocity × tone × envelope in the order it always has (bit for bit)."""
    m = max(2, int(length * sr))
    freq = float(midi_to_hz(pitch))
    if timbres == "alt":
        timbre = ALT_INSTRUMENTS[ALT_OF[instrument]]
        return _alt_tone(freq, m, sr, timbre), _note_envelope(m, sr, timbre.attack)
    partials, decay = INSTRUMENTS[instrument]
    return _tone(freq, m, sr, partials, decay), _note_envelope(m, sr)


def render_note(
    instrument: str, pitch: float, length: float, sample_rate: int, timbres: str = "default"
) -> np.ndarray:
    """One full-velocity melody note of ``instrument`` (a default instrument's name) at
    MIDI ``pitch`` for ``length`` s, as :func:`render_music` plays it with ``timbres``."""
    tone, envelope = _note_parts(instrument, pitch, length, sample_rate, timbres)
    return tone * envelope


def _note_envelope(n: int, sr: int, attack: float = ATTACK) -> np.ndarray:
    env = np.ones(n, dtype=np.float32)
    a = min(n, max(1, int(attack * sr)))
    r = min(n - a, max(1, int(RELEASE * sr)))
    env[:a] = np.linspace(0.0, 1.0, a, dtype=np.float32)
    if r > 0:
        env[n - r :] = np.linspace(1.0, 0.0, r, dtype=np.float32)
    return env


def _add(signal: np.ndarray, start: int, chunk: np.ndarray) -> None:
    end = min(len(signal), start + len(chunk))
    if end > start:
        signal[start:end] += chunk[: end - start]


def render_music(
    score: Score, sample_rate: int, rng: np.random.Generator, *, timbres: str = "default"
) -> np.ndarray:
    """float32 mono waveform of ``round(duration × sample_rate)`` samples in [-1, 1].
    ``timbres``: ``"default"`` or ``"alt"`` (the melody on ``ALT_OF[score.instrument]``);
    the choice draws nothing from ``rng``, so the rest of the clip is the same."""
    if timbres not in TIMBRE_SETS:
        raise ValueError(f"timbres must be one of {TIMBRE_SETS}, got {timbres!r}")
    sr = sample_rate
    n = round(score.duration * sr)
    music = np.zeros(n, dtype=np.float32)

    for onset, length, pitch, velocity in zip(
        score.note_onsets,
        score.note_lengths,
        score.note_pitches,
        score.note_velocities,
        strict=True,
    ):
        tone, envelope = _note_parts(score.instrument, pitch, length, sr, timbres)
        _add(music, round(onset * sr), np.float32(velocity) * tone * envelope)

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
