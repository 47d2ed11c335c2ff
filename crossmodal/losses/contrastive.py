"""Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006)."""

from __future__ import annotations

from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, mean_over
from crossmodal.losses.pairs import PairBatch


class ContrastiveLoss(PairwiseLoss):
    """Margin contrastive loss on Euclidean distances of L2-normalised embeddings.

    With ``d_ij`` the distance between query ``i`` and reference ``j``::

        positive pair:  [d_ij − pos_margin]_+ ^ power
        negative pair:  [neg_margin − d_ij]_+ ^ power

    ``power=2``, ``pos_margin=0`` is Hadsell et al.'s loss (without their constant ½);
    ``power=1`` is pytorch-metric-learning's ``ContrastiveLoss``. Reduction: the mean of
    the non-zero positive terms plus the mean of the non-zero negative terms, so the many
    already-separated negatives do not dilute the few informative pairs; a side with no
    non-zero term contributes 0 (connected to the graph).
    """

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        power: float = 2.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if power <= 0:
            raise ValueError(f"power must be > 0, got {power}")
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin
        self.power = power

    def compute(self, pairs: PairBatch) -> Tensor:
        dist = pairs.distance()
        pos_terms = (dist - self.pos_margin).clamp_min(0.0)
        neg_terms = (self.neg_margin - dist).clamp_min(0.0)
        if self.power != 1:
            pos_terms = pos_terms.pow(self.power)
            neg_terms = neg_terms.pow(self.power)
        pos_loss = mean_over(pos_terms, pairs.pos & (pos_terms > 0), pairs)
        neg_loss = mean_over(neg_terms, pairs.neg & (neg_terms > 0), pairs)
        return pos_loss + neg_loss
