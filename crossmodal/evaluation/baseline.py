"""A non-learned audio–visual synchrony baseline: the bar a trained model must clear.

Music made for a video hits where the picture moves. For every clip this baseline
computes two envelopes on one time grid (``rate`` bins per second from the clip start):

- **music onset strength**: spectral flux (the half-wave rectified rise of a log-mel
  spectrogram, summed over bands) of the clip's music, summed per bin;
- **motion energy**: the mean absolute difference of consecutive grey frames, placed at
  each frame's time and linearly interpolated onto the grid.

The score of a (video, music) pair is the largest normalised cross-correlation of the two
z-scored envelopes over lags within ± ``max_lag`` seconds (a small tolerance for encoder
delay and frame timing). Nothing is learned; both directions rank by the same score
matrix. Clips are compared over their common length (the shortest clip's).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from crossmodal.evaluation.metrics import DEFAULT_KS, chance_recall, metrics_from_ranks
from crossmodal.evaluation.ranking import iter_query_chunks, rank_chunk

log = logging.getLogger(__name__)

BASELINES = ("sync",)


@dataclass(frozen=True)
class SyncSettings:
    """Envelope grid (``rate`` Hz), lag tolerance (seconds), decoding sizes."""

    rate: float = 20.0
    max_lag: float = 0.2
    sample_rate: int = 16000
    frame_size: int = 32


def onset_envelope(wave: np.ndarray, sample_rate: int, n_bins: int, rate: float) -> np.ndarray:
    """Onset strength of mono ``wave`` (sample 0 at the clip start) in ``n_bins`` bins of
    ``1 / rate`` s: the positive spectral flux of a log-mel, summed over each bin (the
    synthetic corpus's self-check computes it; one implementation for both)."""
    from crossmodal.data.synth.selfcheck import onset_envelope as flux_per_interval

    return flux_per_interval(wave, sample_rate, np.arange(n_bins + 1) / rate)


def motion_envelope(
    frames: np.ndarray, frame_times: np.ndarray, n_bins: int, rate: float
) -> np.ndarray:
    """Mean absolute grey-level change between consecutive ``frames`` (N, H, W, 3 uint8),
    at each later frame's time (seconds from the clip start), linearly interpolated onto
    the centres of ``n_bins`` bins of ``1 / rate`` s."""
    from crossmodal.data.synth.selfcheck import motion_envelope as frame_differences

    energy = frame_differences(frames)
    if len(energy) == 0:
        return np.zeros(n_bins, dtype=np.float64)
    grid = (np.arange(n_bins) + 0.5) / rate
    return np.interp(grid, frame_times[1:], energy).astype(np.float64)


def sync_scores(
    video_env: torch.Tensor, music_env: torch.Tensor, max_lag_bins: int
) -> torch.Tensor:
    """(Nv, Nm) scores: for each pair, max over lags |l| ≤ ``max_lag_bins`` of
    ``(1/T) Σ_t z_v[t] · z_m[t + l]`` (z-scored envelopes of T bins, zeros outside)."""
    z_video = _zscore(video_env.double())
    z_music = _zscore(music_env.double())
    length = z_video.shape[1]
    best = torch.full((z_video.shape[0], z_music.shape[0]), -math.inf, dtype=torch.float64)
    for lag in range(-max_lag_bins, max_lag_bins + 1):
        shifted = torch.zeros_like(z_music)
        if lag >= 0:
            shifted[:, : length - lag] = z_music[:, lag:]
        else:
            shifted[:, -lag:] = z_music[:, : length + lag]
        best = torch.maximum(best, z_video @ shifted.T / length)
    return best


def _zscore(envelopes: torch.Tensor) -> torch.Tensor:
    centred = envelopes - envelopes.mean(dim=1, keepdim=True)
    return centred / centred.std(dim=1, keepdim=True).clamp_min(1e-9)


def clip_envelopes(
    records: Sequence[Any], settings: SyncSettings = SyncSettings()
) -> tuple[torch.Tensor, torch.Tensor]:
    """(video, music) envelopes, (N, T) each, of the clips of ``records`` (manifest
    records: ``video``, ``music``, ``start``, ``end``), cut to the shortest clip."""
    from crossmodal.data.audio import load_audio
    from crossmodal.data.specs import VideoSpec
    from crossmodal.data.video import VideoFile

    spec = VideoSpec(height=settings.frame_size, width=settings.frame_size)
    videos, musics = [], []
    for record in records:
        video = VideoFile(record.video, spec)
        end = record.end if record.end is not None else video.end
        duration = max(end - record.start, 1.0 / settings.rate)
        n_bins = max(int(duration * settings.rate), 1)
        inside = (video.starts >= record.start - 1e-6) & (video.starts < end)
        indices = np.flatnonzero(inside)
        frames = video.frames(indices)
        videos.append(
            motion_envelope(frames, video.starts[indices] - record.start, n_bins, settings.rate)
        )
        wave, offset = load_audio(record.music, settings.sample_rate, record.start, end)
        skip = max(round((record.start - offset) * settings.sample_rate), 0)
        musics.append(onset_envelope(wave[skip:], settings.sample_rate, n_bins, settings.rate))
    length = min(len(v) for v in videos)
    video_env = torch.from_numpy(np.stack([v[:length] for v in videos]))
    music_env = torch.from_numpy(np.stack([m[:length] for m in musics]))
    return video_env, music_env


def scores_report(
    scores: torch.Tensor, tracks: torch.Tensor, chunk_size: int = 256
) -> dict[str, Any]:
    """The instance part of an evaluation report (as
    :func:`~crossmodal.evaluation.crossmodal_eval.evaluate_embeddings` gives) from a
    (videos × music) score matrix of clips with track indices ``tracks``."""
    report: dict[str, Any] = {}
    for name, matrix in (("video_to_music", scores), ("music_to_video", scores.T)):
        parts = []
        for start, stop in iter_query_chunks(matrix, chunk_size):
            relevant = tracks[start:stop, None] == tracks[None, :]
            parts.append(rank_chunk(matrix[start:stop], relevant))
        first = torch.cat([p.first_rank for p in parts])
        ap = torch.cat([p.average_precision for p in parts])
        metrics = metrics_from_ranks(first, ap, DEFAULT_KS)
        report[name] = {k: metrics[k] for k in ("R@1", "R@5", "R@10", "MedR", "MeanR", "mAP")}
    report["gallery_size"] = int(scores.shape[1])
    report["chance"] = {
        "R@1": round(chance_recall(tracks, tracks, 1), 6),
        "R@10": round(chance_recall(tracks, tracks, 10), 6),
    }
    return report


def sync_baseline(
    records: Sequence[Any], settings: SyncSettings = SyncSettings(), chunk_size: int = 256
) -> dict[str, Any]:
    """The ``sync`` baseline's report on the clips of ``records`` (one split)."""
    if not records:
        raise ValueError("no clips to score the sync baseline on")
    video_env, music_env = clip_envelopes(records, settings)
    scores = sync_scores(video_env, music_env, round(settings.max_lag * settings.rate))
    names = sorted({r.track_id for r in records})
    position = {name: i for i, name in enumerate(names)}
    tracks = torch.tensor([position[r.track_id] for r in records], dtype=torch.long)
    return scores_report(scores, tracks, chunk_size)


def behind_baseline(model: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Where the model does not beat the baseline, per direction: a mAP not above the
    baseline's (mAP weighs the whole ranking), or an R@1 or R@10 below it (a tie there
    is common on a small gallery, where R@10 is coarse, and does not count). Empty when
    the model beats it both ways."""
    short = {"video_to_music": "v→m", "music_to_video": "m→v"}
    behind = []
    for direction in ("video_to_music", "music_to_video"):
        ours, theirs = model[direction], baseline[direction]
        if ours["mAP"] <= theirs["mAP"]:
            behind.append(f"{short[direction]} mAP {ours['mAP']:.3f} ≤ {theirs['mAP']:.3f}")
        for key in ("R@1", "R@10"):
            if ours[key] < theirs[key]:
                behind.append(f"{short[direction]} {key} {ours[key]:.3f} < {theirs[key]:.3f}")
    return behind
