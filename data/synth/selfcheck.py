"""A hand-made check that a corpus couples its videos to their music at instance level.

No learning: each clip's video gives a *motion envelope* (mean absolute difference
between consecutive frames, grey, 32×32) and its music an *onset envelope* (positive
spectral flux of a 32-band log-mel, summed over each frame interval). A video is scored
against every soundtrack of the gallery by the Pearson correlation of the two envelopes
over the same time axis, and the right soundtrack's rank gives R@k and the median rank.
Chance: R@1 = 1/N, R@10 = 10/N, MedR ≈ N/2 for an N-clip gallery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from crossmodal.data.audio import load_audio
from crossmodal.data.manifest import ClipRecord
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.data.video import decode_segment, frames_from_segment

ENVELOPE_SIZE = 32
ENVELOPE_SAMPLE_RATE = 16000


def motion_envelope(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) → (T - 1,) mean |grey_t - grey_{t-1}|."""
    grey = frames.astype(np.float32).mean(axis=-1)
    return np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))


@lru_cache(maxsize=4)
def _envelope_logmel(sample_rate: int) -> tuple[AudioSpec, torch.nn.Module]:
    from crossmodal.data.logmel import LogMel

    spec = AudioSpec(sample_rate=sample_rate, n_mels=32, n_fft=512, hop_length=sample_rate // 100)
    return spec, LogMel(spec)


def onset_envelope(wave: np.ndarray, sample_rate: int, frame_times: np.ndarray) -> np.ndarray:
    """(S,) waveform starting at frame_times[0] → (T - 1,) spectral flux between frames."""
    spec, logmel = _envelope_logmel(sample_rate)
    with torch.no_grad():
        mel = logmel(torch.from_numpy(wave)).numpy()
    flux = np.maximum(np.diff(mel, axis=1), 0.0).sum(axis=0)
    flux_times = frame_times[0] + (np.arange(len(flux)) + 1) * spec.hop_length / sample_rate
    bins = np.searchsorted(frame_times, flux_times, side="right") - 1
    out = np.zeros(len(frame_times) - 1)
    valid = (bins >= 0) & (bins < len(out))
    # Flux between frame t-1 and frame t lands in bin t-1 (the change frame t shows).
    np.add.at(out, bins[valid], flux[valid])
    return out


@dataclass(frozen=True)
class CouplingResult:
    """Retrieval by envelope correlation on an N-clip gallery, both directions."""

    n: int
    video_to_music: dict[str, float]
    music_to_video: dict[str, float]

    def chance(self) -> dict[str, float]:
        return {"R@1": 1 / self.n, "R@10": min(1.0, 10 / self.n), "MedR": (self.n + 1) / 2}


def rank_metrics(similarity: np.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 and the median rank (1 = best) of the diagonal of (N, N) scores.

    Ranks follow the evaluation's one rule (:func:`crossmodal.evaluation.ranking.rank_chunk`):
    ties count against the right item, so a constant score earns the worst rank.
    """
    from crossmodal.evaluation.ranking import rank_chunk

    n = similarity.shape[0]
    relevant = torch.eye(n, dtype=torch.bool)
    ranks = rank_chunk(torch.from_numpy(np.asarray(similarity)), relevant).first_rank.numpy()
    return {
        "R@1": float((ranks <= 1).mean()),
        "R@5": float((ranks <= 5).mean()),
        "R@10": float((ranks <= 10).mean()),
        "MedR": float(np.median(ranks)),
    }


def clip_envelopes(record: ClipRecord, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(motion, onset) envelopes of one clip over [start, end) sampled at ``fps``."""
    spec = VideoSpec(num_frames=1, height=ENVELOPE_SIZE, width=ENVELOPE_SIZE)
    frames, starts = decode_segment(record.video, spec, record.start, record.end)
    end = record.end if record.end is not None else float(starts[-1]) + 1.0 / fps
    times = np.arange(record.start, end - 1e-9, 1.0 / fps)
    motion = motion_envelope(frames_from_segment(frames, starts, times, str(record.video)))
    wave, offset = load_audio(record.music, ENVELOPE_SAMPLE_RATE, record.start, end)
    first = round((record.start - offset) * ENVELOPE_SAMPLE_RATE)
    onset = onset_envelope(wave[first:], ENVELOPE_SAMPLE_RATE, times)
    return motion, onset


def coupling_check(records: Sequence[ClipRecord], fps: float = 12.0) -> CouplingResult:
    """Envelope-correlation retrieval over ``records`` (each its own track)."""

    def zscore(rows: list[np.ndarray]) -> np.ndarray:
        length = min(len(r) for r in rows)
        x = np.stack([r[:length] for r in rows])
        x = x - x.mean(axis=1, keepdims=True)
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)

    motions, onsets = zip(*(clip_envelopes(r, fps) for r in records), strict=True)
    similarity = zscore(list(motions)) @ zscore(list(onsets)).T
    return CouplingResult(
        n=len(records),
        video_to_music=rank_metrics(similarity),
        music_to_video=rank_metrics(similarity.T),
    )
