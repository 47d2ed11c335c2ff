from __future__ import annotations

import pytest
import torch

from crossmodal.data import SpecAugment


def _runs(mask_1d: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean tensor."""
    runs, n = [], 0
    for value in [*mask_1d.tolist(), False]:
        if value:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_masks_respect_counts_and_widths() -> None:
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=2, freq_width=6, time_masks=3, time_width=10)
    for _ in range(50):
        mask = aug.mask(torch.Size([64, 200]), torch.device("cpu"))
        freq_rows = mask.all(dim=1)  # a frequency mask covers every frame of its bands
        time_cols = mask.all(dim=0)
        assert freq_rows.sum() <= 2 * 6
        assert time_cols.sum() <= 3 * 10
        # every masked cell lies in a masked band or a masked span
        assert torch.equal(mask, freq_rows[:, None] | time_cols[None, :])
        assert all(run <= 12 for run in _runs(freq_rows))


def test_masked_cells_take_the_example_mean_and_others_are_untouched() -> None:
    torch.manual_seed(1)
    x = torch.randn(4, 32, 100) * 3 - 5
    aug = SpecAugment(freq_masks=1, freq_width=8, time_masks=1, time_width=20)
    torch.manual_seed(2)
    mask = aug.mask(x.shape, x.device)
    torch.manual_seed(2)
    y = aug(x)
    means = x.mean(dim=(1, 2))
    for b in range(4):
        assert torch.equal(y[b][~mask[b]], x[b][~mask[b]])
        assert torch.allclose(y[b][mask[b]], means[b].expand(int(mask[b].sum())))


def test_zero_widths_are_identity_and_shape_is_checked() -> None:
    x = torch.randn(2, 16, 50)
    assert torch.equal(SpecAugment(0, 0, 0, 0)(x), x)
    assert torch.equal(SpecAugment(2, 0, 2, 0)(x), x)
    with pytest.raises(ValueError, match="n_mels, frames"):
        SpecAugment()(torch.randn(10))
    with pytest.raises(ValueError, match=">= 0"):
        SpecAugment(freq_width=-1)
