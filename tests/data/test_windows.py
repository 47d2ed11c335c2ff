from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmodal.data import (
    TooShortError,
    centre_window,
    random_window,
    segment_windows,
    sliding_windows,
)
from crossmodal.data.windows import check_fits


def test_sliding_windows_cover_the_whole_span() -> None:
    np.testing.assert_allclose(sliding_windows(0.0, 10.0, 4.0, 2.0), [0, 2, 4, 6])
    # 9 s with 4 s windows every 3 s: 0, 3 and a last one ending exactly at 9.
    np.testing.assert_allclose(sliding_windows(0.0, 9.0, 4.0, 3.0), [0, 3, 5])
    np.testing.assert_allclose(sliding_windows(1.0, 5.0, 4.0, 1.0), [1])
    assert len(sliding_windows(0.0, 3.9, 4.0, 1.0)) == 0
    with pytest.raises(ValueError, match="positive"):
        sliding_windows(0, 10, 4, 0)


def test_fixed_windows() -> None:
    assert centre_window(2.0, 10.0, 4.0) == 4.0
    np.testing.assert_allclose(segment_windows(0.0, 10.0, 4.0, 4), [0, 2, 4, 6])
    np.testing.assert_allclose(segment_windows(0.0, 10.0, 4.0, 1), [3.0])
    with pytest.raises(ValueError, match="count"):
        segment_windows(0, 10, 4, 0)


def test_random_window_is_uniform_inside_the_clip() -> None:
    g = torch.Generator().manual_seed(0)
    starts = np.array([random_window(1.0, 7.0, 2.0, g) for _ in range(4000)])
    assert starts.min() >= 1.0
    assert starts.max() <= 5.0
    assert np.histogram(starts, bins=4, range=(1, 5))[0].min() > 850  # ~1000 per bin
    assert random_window(1.0, 3.0, 2.0, g) == 1.0


def test_check_fits() -> None:
    check_fits(0.0, 4.0, 4.0)
    with pytest.raises(TooShortError, match=r"lasts 3\.000 s, shorter than the 4 s window"):
        check_fits(1.0, 4.0, 4.0, "x.mp4")
