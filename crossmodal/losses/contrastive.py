"""Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, ratio_or_zero
from crossmodal.losses.pairs import PairBatch


class ContrastiveLoss(PairwiseLoss):
    """Margin contrastive loss on Euclidean distances of L2-normalised embeddings.

    With ``d_ij`` the distance between query ``i`` and reference ``j``::

        positive pair:  [d_ij − pos_margin]_+ ^ power
        negative pair:  [neg_margin − d_ij]_+ ^ power

    ``power=2``, ``pos_margin=0`` is Hadsell et al.'s loss (without their constant ½);
    ``power=1`` is pytorch-metric-learning's ``ContrastiveLoss``; ``power`` must be ≥ 1.
    Reduction: the mean of the non-zero positive terms plus the mean of the non-zero
    negative terms, so the many already-separated negatives do not dilute the few
    informative pairs; a side with no non-zero term contributes 0 (connected to the graph).
    """

    uses_distance = True

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        power: float = 2.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if power < 1:
            raise ValueError(f"power must be >= 1, got {power}")
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin
        self.power = power

    def _rows(self, pairs: PairBatch) -> tuple[Tensor, ...]:
        dist = pairs.distance()
        pos_terms = torch.where(pairs.pos, (dist - self.pos_margin).clamp_min(0.0), 0.0)
        neg_terms = torch.where(pairs.neg, (self.neg_margin - dist).clamp_min(0.0), 0.0)
        pos_count, neg_count = (pos_terms > 0).sum(1), (neg_terms > 0).sum(1)
        if self.power != 1:
            pos_terms, neg_terms = pos_terms.pow(self.power), neg_terms.pow(self.power)
        return pos_terms.sum(1), pos_count, neg_terms.sum(1), neg_count

    def compute(self, pairs: PairBatch) -> Tensor:
        pos_sum, pos_count, neg_sum, neg_count = self.rowwise(pairs, self._rows)
        return ratio_or_zero(pos_sum.sum(), pos_count.sum(), pairs) + ratio_or_zero(
            neg_sum.sum(), neg_count.sum(), pairs
        )
