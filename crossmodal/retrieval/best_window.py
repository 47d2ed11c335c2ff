"""Per-item de-duplication of window hits: an item's score is its best window's score."""

from __future__ import annotations

import numpy as np


def first_per_item(item_ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the first occurrence of each item in a best-first row, at most ``k``.

    ``item_ids`` (N,) holds the item of each ranked window (-1 = no result, skipped).
    Because the row is sorted by score, an item's first occurrence is its best window,
    so the returned positions rank items by their maximum window score (ties keep the
    row's order).
    """
    valid = np.flatnonzero(item_ids >= 0)
    _, first = np.unique(item_ids[valid], return_index=True)
    return valid[np.sort(first)][:k]
