"""The instance level of the synthetic corpus: one clip's latent "score".

A score is everything both modalities are rendered from, on one time axis (seconds from
the start of the clip): the beat grid (tempo and phase), the melody's notes (onset,
length, pitch, velocity), accents on random beats, breaks (silences of one or two beats at
random places) and a loudness envelope with random knots. The music plays it; the video
shows it (see ``README.md`` next to this file for the mapping).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossmodal.data.synth.moods import Mood

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Melody pitches are mapped to heights in the frame over this MIDI range.
PITCH_RANGE = (40.0, 96.0)


@dataclass(frozen=True)
class Score:
    """One clip's latent music, shared by its audio and its video.

    Arrays are float64 seconds unless stated. ``note_*`` arrays are aligned (one entry per
    note, sorted by onset); ``breaks`` is (n, 2) [start, end) intervals.
    """

    duration: float
    bpm: float
    phase: float
    major: bool
    root: int
    instrument: str
    drums: float
    beat_times: np.ndarray
    accent_times: np.ndarray
    note_onsets: np.ndarray
    note_lengths: np.ndarray
    note_pitches: np.ndarray
    note_velocities: np.ndarray
    breaks: np.ndarray
    envelope_times: np.ndarray
    envelope_values: np.ndarray

    @property
    def beat_period(self) -> float:
        return 60.0 / self.bpm

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """Loudness envelope in [0.2, 1] at times ``t`` (piecewise linear between knots)."""
        return np.interp(t, self.envelope_times, self.envelope_values)

    def gate(self, t: np.ndarray, ramp: float = 0.0) -> np.ndarray:
        """1 outside breaks, 0 inside; linear ramps of ``ramp`` seconds at both edges."""
        g = np.ones_like(t, dtype=np.float64)
        for start, end in self.breaks:
            if ramp > 0:
                inside = np.clip(
                    np.minimum(t - start, end - t) / ramp + 0.5, 0.0, 1.0
                )  # 0 outside the break, 1 well inside
            else:
                inside = ((t >= start) & (t < end)).astype(np.float64)
            g = np.minimum(g, 1.0 - inside)
        return g

    def height(self, pitch: np.ndarray) -> np.ndarray:
        """Pitch → height in [0, 1] (1 = top of the frame): high notes sit high."""
        lo, hi = PITCH_RANGE
        return np.clip((pitch - lo) / (hi - lo), 0.0, 1.0)

    def meta(self) -> dict[str, object]:
        """Summary for the manifest (not needed to decode; useful to analyse results)."""
        return {
            "bpm": round(self.bpm, 2),
            "phase": round(self.phase, 4),
            "mode": "major" if self.major else "minor",
            "root": self.root,
            "instrument": self.instrument,
            "notes": len(self.note_onsets),
            "accents": len(self.accent_times),
            "breaks": [[round(a, 3), round(b, 3)] for a, b in self.breaks.tolist()],
        }


def _weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = sorted(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_score(mood: Mood, rng: np.random.Generator, duration: float) -> Score:
    """Draw one clip's score from ``mood`` (category level) and ``rng`` (instance level)."""
    bpm = float(rng.uniform(*mood.tempo))
    period = 60.0 / bpm
    phase = float(rng.uniform(0.0, period))
    beats = phase + period * np.arange(int(np.ceil((duration - phase) / period)) + 1)
    beats = beats[beats < duration]

    # Breaks: up to two silences of one or two beats (at most 0.9 s), starting on separate beats.
    breaks = []
    n_breaks = int(rng.choice(3, p=[0.25, 0.5, 0.25]))
    candidates = rng.permutation(np.arange(1, max(2, len(beats) - 1)))
    for first in candidates:
        if len(breaks) == n_breaks:
            break
        length = int(rng.integers(1, 3))
        start = float(beats[min(int(first), len(beats) - 1)])
        end = min(duration, start + min(length * period, 0.9))
        if all(end + period <= a or start >= b + period for a, b in breaks):
            breaks.append((start, end))
    break_arr = np.array(sorted(breaks), dtype=np.float64).reshape(-1, 2)

    def in_break(t: np.ndarray) -> np.ndarray:
        hit = np.zeros(t.shape, dtype=bool)
        for start, end in break_arr:
            hit |= (t >= start - 0.02) & (t < end)
        return hit

    accents = beats[rng.random(len(beats)) < 0.3]
    # Not in a break, and early enough for its note to sound before the clip ends.
    accents = accents[~in_break(accents) & (accents < duration - 0.05)]

    # Melody slots: the finest subdivision of the beat (1, 2 or 4) that keeps between 2.2 and
    # 5.5 slots a second, or with probability busy_p the next finer one that still does, so
    # slow and fast pieces alike carry ~10 onsets in 4 s.
    admissible = [sub for sub in (1, 2, 4) if 2.2 <= bpm * sub / 60.0 <= 5.5] or [2]
    sub = admissible[-1] if len(admissible) > 1 and rng.random() < mood.busy_p else admissible[0]
    step = period / sub
    slots = phase + step * np.arange(int(np.ceil((duration - phase) / step)) + 1)
    slots = slots[slots < duration - 0.05]
    density = rng.uniform(*mood.density)
    keep = rng.random(len(slots)) < density
    # Accented beats always sound a note, so every accent is seen and heard as an onset.
    keep |= np.isin(np.round(slots, 6), np.round(accents, 6))
    onsets = slots[keep & ~in_break(slots)]

    major = bool(rng.random() < mood.major_p)
    scale = np.array(MAJOR if major else MINOR)
    root = int(rng.integers(mood.register[0], mood.register[1] + 1))
    # Melody: a random walk over two octaves of the scale, so pitch (height) moves often.
    degree = int(rng.integers(0, 7))
    degrees = []
    for _ in range(len(onsets)):
        degree = int(np.clip(degree + rng.choice([-4, -3, -2, -1, 1, 2, 3, 4]), 0, 13))
        degrees.append(degree)
    deg = np.array(degrees, dtype=np.int64)
    pitches = root + 12 * (deg // 7) + scale[deg % 7]

    legato = rng.uniform(0.5, 0.95)
    lengths = np.full(len(onsets), step * legato)
    velocities = rng.uniform(0.45, 0.75, len(onsets))
    accented = np.isin(np.round(onsets, 6), np.round(accents, 6))
    velocities[accented] = 1.0

    knot_times = [0.0]
    while knot_times[-1] < duration:
        knot_times.append(knot_times[-1] + float(rng.uniform(0.4, 1.1)))
    knot_values = rng.uniform(0.2, 1.0, len(knot_times))

    return Score(
        duration=duration,
        bpm=bpm,
        phase=phase,
        major=major,
        root=root,
        instrument=_weighted_choice(rng, mood.instruments),
        drums=float(rng.uniform(*mood.drums)),
        beat_times=beats,
        accent_times=accents,
        note_onsets=onsets,
        note_lengths=lengths,
        note_pitches=pitches.astype(np.float64),
        note_velocities=velocities,
        breaks=break_arr,
        envelope_times=np.array(knot_times),
        envelope_values=knot_values,
    )
