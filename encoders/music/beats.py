"""Beat tracking by dynamic programming (Ellis 2007), in numpy.

librosa's ``beat_track`` implements the same method but compiles a numba kernel on every
import (tens of seconds per process on a small CPU); this version runs in a few
milliseconds on a clip's onset envelope and needs no compilation.
"""

from __future__ import annotations

import numpy as np


def track_beats(
    onset_envelope: np.ndarray, frames_per_beat: float, tightness: float = 100.0
) -> np.ndarray:
    """Frame indices of the beats in ``onset_envelope`` at a known tempo.

    Ellis, "Beat Tracking by Dynamic Programming" (J. New Music Research, 2007). With
    ``P = frames_per_beat`` and the onset envelope ``o`` normalised by its standard
    deviation and smoothed by a Gaussian of width ``P / 32``:

        C(t) = o(t) + max_{τ ∈ [t − 2P, t − P/2]} ( C(τ) − tightness · log²((t − τ) / P) )

    The last beat is the last local maximum of ``C`` that reaches half the median of all
    its local maxima; earlier beats follow the argmax links back. Leading and trailing
    beats whose smoothed onset is under half the beats' RMS are trimmed. Returns an empty
    array when the envelope is silent.
    """
    onset = np.asarray(onset_envelope, dtype=np.float64)
    if onset.ndim != 1:
        raise ValueError(f"onset_envelope must be 1-D, got shape {onset.shape}")
    if not frames_per_beat > 0:
        raise ValueError(f"frames_per_beat must be positive, got {frames_per_beat}")
    std = onset.std(ddof=1) if onset.size > 1 else 0.0
    if onset.size == 0 or std <= 0 or not onset.any():
        return np.zeros(0, dtype=np.int64)
    onset = onset / std
    half = round(frames_per_beat)
    offsets = np.arange(-half, half + 1)
    window = np.exp(-0.5 * (offsets * 32.0 / frames_per_beat) ** 2)
    local = np.convolve(onset, window, mode="same")

    n = local.size
    score = local.copy()
    backlink = np.full(n, -1, dtype=np.int64)
    lo_offset = round(2 * frames_per_beat)
    hi_offset = max(round(frames_per_beat / 2), 1)
    for t in range(n):
        hi = t - hi_offset
        if hi < 0:
            continue
        candidates = np.arange(max(t - lo_offset, 0), hi + 1)
        penalty = tightness * np.log((t - candidates) / frames_per_beat) ** 2
        values = score[candidates] - penalty
        best = int(np.argmax(values))
        score[t] = local[t] + values[best]
        backlink[t] = candidates[best]

    peaks = [t for t in range(n) if _is_local_max(score, t)]
    if not peaks:
        return np.zeros(0, dtype=np.int64)
    threshold = 0.5 * np.median(score[peaks])
    last = max(t for t in peaks if score[t] >= threshold)
    beats = [last]
    while backlink[beats[-1]] >= 0:
        beats.append(int(backlink[beats[-1]]))
    beats = np.array(beats[::-1], dtype=np.int64)
    # Trim weak beats at the edges, where the DP runs on before/after the music.
    strong = np.flatnonzero(local[beats] >= 0.5 * np.sqrt(np.mean(local[beats] ** 2)))
    return beats[strong[0] : strong[-1] + 1] if strong.size else beats


def _is_local_max(values: np.ndarray, t: int) -> bool:
    left = values[t - 1] if t > 0 else -np.inf
    right = values[t + 1] if t + 1 < values.size else -np.inf
    return bool(values[t] > left and values[t] >= right)
