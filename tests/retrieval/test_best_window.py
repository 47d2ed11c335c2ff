from __future__ import annotations

import numpy as np

from crossmodal.retrieval import first_per_item


def _naive(items: list[int], k: int) -> list[int]:
    seen: set[int] = set()
    out = []
    for pos, item in enumerate(items):
        if item >= 0 and item not in seen:
            seen.add(item)
            out.append(pos)
    return out[:k]


def test_matches_a_naive_first_occurrence_loop() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        rows = rng.integers(-1, 6, size=(int(rng.integers(1, 5)), int(rng.integers(0, 30))))
        k = int(rng.integers(1, 8))
        mask = first_per_item(rows, k)
        assert mask.shape == rows.shape
        for row, row_mask in zip(rows, mask, strict=True):
            assert np.flatnonzero(row_mask).tolist() == _naive(row.tolist(), k)


def test_all_windows_of_one_item_count_once() -> None:
    mask = first_per_item(np.array([7, 7, 7, 7, 3, 7, 5]), 10)
    assert np.flatnonzero(mask[0]).tolist() == [0, 4, 6]
    assert np.flatnonzero(first_per_item(np.array([7, 7, 3, 5]), 2)[0]).tolist() == [0, 2]
