"""The synthetic music-video corpus: moods (category level), scores (instance level),
music and picture renderers, the corpus writer and the coupling self-check.
See ``README.md`` in this folder for the generative model and chance levels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossmodal.lazy import lazy_exports

if TYPE_CHECKING:
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

# Resolved on first access (PEP 562): corpus workers import the renderers without torch.
_EXPORTS = {
    "CouplingResult": "crossmodal.data.synth.selfcheck",
    "MOODS": "crossmodal.data.synth.moods",
    "Mood": "crossmodal.data.synth.moods",
    "SHAPES": "crossmodal.data.synth.visuals",
    "Score": "crossmodal.data.synth.score",
    "SynthConfig": "crossmodal.data.synth.corpus",
    "clip_rng": "crossmodal.data.synth.corpus",
    "coupling_check": "crossmodal.data.synth.selfcheck",
    "generate_corpus": "crossmodal.data.synth.corpus",
    "mood_names": "crossmodal.data.synth.moods",
    "parse_split": "crossmodal.data.synth.corpus",
    "rank_metrics": "crossmodal.data.synth.selfcheck",
    "render_clip": "crossmodal.data.synth.corpus",
    "render_frames": "crossmodal.data.synth.visuals",
    "render_music": "crossmodal.data.synth.music",
    "sample_score": "crossmodal.data.synth.score",
    "split_counts": "crossmodal.data.synth.corpus",
}

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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
