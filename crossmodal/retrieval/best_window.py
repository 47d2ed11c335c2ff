"""Per-item de-duplication of window hits: an item's score is its best window's score."""

from __future__ import annotations

import numpy as np


def first_per_item(item_ids: np.ndarray, k: int) -> np.ndarray:
    """Mask of each item's first occurrence in each best-first row, at most ``k`` per row.

    ``item_ids`` (Q, F) (or (F,)) holds the item of each ranked window, -1 for "no
    result" (never kept). Rows are sorted by score, so an item's first occurrence is its
    best window and the kept positions rank items by their maximum window score (ties
    keep the row's order). Returns a bool mask of ``item_ids``' shape (2-D for 1-D input).
    Vectorised: a stable argsort groups each row's windows by item, rank order intact.
    """
    item_ids = np.atleast_2d(np.asarray(item_ids))
    order = np.argsort(item_ids, axis=1, kind="stable")
    grouped = np.take_along_axis(item_ids, order, axis=1)
    first_in_group = np.ones(grouped.shape, dtype=bool)
    first_in_group[:, 1:] = grouped[:, 1:] != grouped[:, :-1]
    first = np.zeros(grouped.shape, dtype=bool)
    np.put_along_axis(first, order, first_in_group, axis=1)
    first &= item_ids >= 0
    return first & (np.cumsum(first, axis=1) <= k)
