"""Semi-hard negative mining (Schroff, Kalenichenko & Philbin, FaceNet, CVPR 2015)."""

from __future__ import annotations

import torch
from torch import Tensor

from crossmodal.losses.pairs import PairBatch
from crossmodal.sampling.miners.base import Miner, one_hot_rows


class SemiHardMiner(Miner):
    """Negatives farther than the positive but inside the margin: ``d_ap < d_an < d_ap + α``.

    The masks a miner returns pair every kept positive of an anchor with every kept
    negative, so a condition on (positive, negative) can only hold exactly for one
    positive per anchor: the anchor's hardest (farthest) positive is kept, with the
    negatives semi-hard with respect to it. Every triplet a loss forms from the masks is
    then semi-hard in FaceNet's sense. Anchors without a semi-hard negative keep nothing.

    Args:
        margin: ``α`` (default 0.2, FaceNet's), in the same units as the distances.
        squared: compare squared Euclidean distances (FaceNet) instead of distances.
            Use the same choice as the triplet loss it feeds.
    """

    def __init__(self, margin: float = 0.2, squared: bool = False) -> None:
        super().__init__()
        if margin <= 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        self.margin = margin
        self.squared = squared

    def mine(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        dist = pairs.distance(squared=self.squared)
        pos_dist, hardest_pos = torch.where(pairs.pos, dist, float("-inf")).max(1)
        lower = pos_dist[:, None]
        neg = pairs.neg & (dist > lower) & (dist < lower + self.margin)
        keep = pairs.pos.any(1) & neg.any(1)
        return one_hot_rows(hardest_pos, keep, dist.shape[1]), neg & keep[:, None]
