"""Where windows go inside a clip [start, end]: random (training), fixed (evaluation),
sliding (embedding long files window by window), and the batches that carry them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from crossmodal.data.errors import TooShortError


def check_fits(start: float, end: float, window: float, path: str = "<clip>") -> None:
    """:class:`TooShortError` unless a ``window``-second window fits in [start, end]."""
    if end - start < window - 1e-6:
        raise TooShortError(
            path,
            f"clip [{start:.3f}, {end:.3f}] s lasts {end - start:.3f} s, shorter than the {window:g} s window",
        )


def random_window(
    start: float, end: float, window: float, generator: torch.Generator | None = None
) -> float:
    """Uniform window start in [start, end - window] (torch's RNG, so DataLoader worker
    seeding applies)."""
    slack = max(0.0, end - start - window)
    return start + slack * float(torch.rand((), generator=generator))


def centre_window(start: float, end: float, window: float) -> float:
    """Start of the window centred in [start, end]."""
    return start + max(0.0, end - start - window) / 2


def segment_windows(start: float, end: float, window: float, count: int) -> np.ndarray:
    """``count`` window starts spread evenly from ``start`` to ``end - window`` (one
    window: the centre one)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if count == 1:
        return np.array([centre_window(start, end, window)])
    return np.linspace(start, start + max(0.0, end - start - window), count)


def sliding_windows(
    start: float, end: float, window: float, hop: float, min_tail: float = 1e-6
) -> np.ndarray:
    """Starts of ``window``-second windows every ``hop`` seconds over [start, end]; when
    the hops leave a tail longer than ``min_tail`` seconds, one last window ends exactly
    at ``end`` so all of it is seen. A span shorter than one window gives no windows."""
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    last = end - window
    if last < start - 1e-9:
        return np.zeros(0)
    starts = np.arange(start, last + 1e-9, hop)
    if last - starts[-1] > min_tail:
        starts = np.append(starts, last)
    return starts


# A tail shorter than this fraction of a hop gets no window of its own when a whole file
# is embedded: an AAC stream padded by a few milliseconds would otherwise give a window
# that nearly repeats the one before it.
TAIL_FRACTION = 0.25


def file_windows(end: float, window: float, hop: float) -> np.ndarray:
    """Window starts for embedding a whole file whose decoded stream ends at ``end``:
    :func:`sliding_windows` over [0, end], the last window ending at ``end`` unless the
    tail is under ``TAIL_FRACTION`` of a hop."""
    return sliding_windows(0.0, end, window, hop, min_tail=TAIL_FRACTION * hop)


@dataclass
class WindowBatch:
    """Consecutive windows of one file: their starts (s), the model inputs (float (N, ...)
    per the spec), and ``padded``: whether the file was shorter than one window and its
    only window was completed (silence for music, the last frame held for video).
    ``end``: the file's decoded end in seconds, set on its last batch."""

    starts: np.ndarray
    inputs: torch.Tensor
    padded: bool = False
    end: float | None = None
