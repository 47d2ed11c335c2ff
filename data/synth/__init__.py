"""The synthetic music-video corpus: moods (category level), scores (instance level),
music and picture renderers, the corpus writer and the coupling self-check.
See ``README.md`` in this folder for the generative model and chance levels."""

from __future__ import annotations

from crossmodal.data.synth.corpus import (
    SynthConfig,
    clip_rng,
    generate_corpus,
    parse_split,
    render_clip,
    split_counts,
)
from crossmodal.data.synth.moods import MOODS, Mood, mood_names
from crossmodal.data.synth.music import render_music
from crossmodal.data.synth.score import Score, sample_score
from crossmodal.data.synth.selfcheck import CouplingResult, coupling_check, rank_metrics
from crossmodal.data.synth.visuals import SHAPES, render_frames

__all__ = [
    "MOODS",
    "SHAPES",
    "CouplingResult",
    "Mood",
    "Score",
    "SynthConfig",
    "clip_rng",
    "coupling_check",
    "generate_corpus",
    "mood_names",
    "parse_split",
    "rank_metrics",
    "render_clip",
    "render_frames",
    "render_music",
    "sample_score",
    "split_counts",
]
