"""The category level of the synthetic corpus: moods as distributions over music and visuals.

Every range is sampled uniformly per clip; neighbouring moods overlap in tempo, palette,
timbre and loudness, so no single attribute names the mood.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mood:
    """One mood: where its music and its pictures come from.

    Music: ``tempo`` (bpm range), ``major_p`` (probability of a major key, else minor),
    ``instruments`` (name → weight; the timbre, see :mod:`.music`), ``density`` (range of
    the probability that a melody slot holds a note), ``busy_p`` (probability that the
    melody takes the finer of two admissible beat subdivisions), ``register`` (MIDI range of the
    melody's root), ``drums`` (level of the beat tick and accent kick).
    Visuals: ``hue`` (range, in turns, of the background hue; the object takes a
    complementary hue), ``saturation`` and ``value`` ranges, ``motion`` (speed of drift
    and camera movement).
    """

    name: str
    tempo: tuple[float, float]
    major_p: float
    instruments: dict[str, float]
    density: tuple[float, float]
    busy_p: float
    register: tuple[int, int]
    drums: tuple[float, float]
    hue: tuple[float, float]
    saturation: tuple[float, float]
    value: tuple[float, float]
    motion: float


MOODS: tuple[Mood, ...] = (
    Mood(
        name="joyful",
        tempo=(105, 140),
        major_p=0.9,
        instruments={"pluck": 0.4, "triangle": 0.3, "square": 0.3},
        density=(0.6, 0.9),
        busy_p=0.5,
        register=(60, 72),
        drums=(0.3, 0.6),
        hue=(0.06, 0.2),
        saturation=(0.55, 0.9),
        value=(0.65, 0.95),
        motion=1.0,
    ),
    Mood(
        name="melancholic",
        tempo=(58, 88),
        major_p=0.15,
        instruments={"sine": 0.4, "triangle": 0.35, "bell": 0.25},
        density=(0.5, 0.8),
        busy_p=0.3,
        register=(50, 64),
        drums=(0.05, 0.25),
        hue=(0.52, 0.7),
        saturation=(0.15, 0.5),
        value=(0.3, 0.6),
        motion=0.45,
    ),
    Mood(
        name="tense",
        tempo=(88, 132),
        major_p=0.2,
        instruments={"saw": 0.5, "square": 0.3, "bell": 0.2},
        density=(0.5, 0.9),
        busy_p=0.5,
        register=(45, 60),
        drums=(0.4, 0.8),
        hue=(-0.06, 0.06),
        saturation=(0.55, 1.0),
        value=(0.25, 0.55),
        motion=1.2,
    ),
    Mood(
        name="calm",
        tempo=(58, 92),
        major_p=0.7,
        instruments={"sine": 0.5, "triangle": 0.3, "pluck": 0.2},
        density=(0.5, 0.8),
        busy_p=0.2,
        register=(55, 69),
        drums=(0.05, 0.25),
        hue=(0.27, 0.5),
        saturation=(0.25, 0.6),
        value=(0.5, 0.8),
        motion=0.35,
    ),
    Mood(
        name="energetic",
        tempo=(122, 170),
        major_p=0.6,
        instruments={"saw": 0.4, "square": 0.4, "pluck": 0.2},
        density=(0.6, 1.0),
        busy_p=0.4,
        register=(55, 70),
        drums=(0.5, 0.9),
        hue=(0.8, 0.97),
        saturation=(0.65, 1.0),
        value=(0.55, 0.95),
        motion=1.6,
    ),
    Mood(
        name="dreamy",
        tempo=(64, 100),
        major_p=0.55,
        instruments={"bell": 0.4, "sine": 0.3, "triangle": 0.3},
        density=(0.5, 0.8),
        busy_p=0.3,
        register=(62, 76),
        drums=(0.05, 0.3),
        hue=(0.68, 0.86),
        saturation=(0.15, 0.5),
        value=(0.55, 0.9),
        motion=0.5,
    ),
)


def mood_names() -> tuple[str, ...]:
    """The mood vocabulary in table order (the ``label`` values of the manifest)."""
    return tuple(m.name for m in MOODS)
