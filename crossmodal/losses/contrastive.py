"""Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
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

    def _terms(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        """Hinges [d − pos_margin]_+ on positives and [neg_margin − d]_+ on negatives."""
        dist = pairs.distance()
        pos_terms = torch.where(pairs.pos, (dist - self.pos_margin).clamp_min_(0.0), 0.0)
        neg_terms = torch.where(pairs.neg, (self.neg_margin - dist).clamp_min_(0.0), 0.0)
        return pos_terms, neg_terms

    def _slope(self, hinge: Tensor) -> Tensor:
        """d(hinge^power)/d(hinge), 0 where the hinge is inactive."""
        if self.power == 1:
            return (hinge > 0).to(hinge.dtype)
        return hinge.pow(self.power - 1).mul_(self.power)

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        sums = pairs.sim.new_zeros(2)
        counts = torch.zeros(2, dtype=torch.long, device=pairs.sim.device)
        grad_sim, _, _ = self.grad_buffers(pairs) if with_grad else (None,) * 3
        # Per side (positive, negative): row and column sums of d value/d d², unnormalised.
        side_rows = [pairs.sim.new_zeros(pairs.sim.shape[0]) for _ in range(2)]
        side_cols = [pairs.sim.new_zeros(pairs.sim.shape[1]) for _ in range(2)]
        start = 0
        for block in self.blocks(pairs):
            rows = slice(start, start + block.sim.shape[0])
            start = rows.stop
            terms = self._terms(block)
            for side, hinge in enumerate(terms):
                counts[side] += (hinge > 0).sum()
                sums[side] += (hinge if self.power == 1 else hinge.pow(self.power)).sum()
            if with_grad:
                # d hinge/d d is +slope for positives and −slope for negatives; through
                # d = sqrt(d²): × 1/(2d), and d²/ds = −2. Sides are disjoint, so one
                # buffer holds both until their normalisers are known.
                dist = block.distance()
                half_inv = dist.reciprocal().masked_fill_(dist == 0, 0.0).mul_(0.5)
                pos_sq = self._slope(terms[0]).mul_(half_inv)
                neg_sq = self._slope(terms[1]).mul_(half_inv).neg_()
                for side, grad_sq in enumerate((pos_sq, neg_sq)):
                    side_rows[side][rows] = grad_sq.sum(1)
                    side_cols[side] += grad_sq.sum(0)
                torch.add(pos_sq, neg_sq, out=grad_sim[rows]).mul_(-2.0)
        weights = [1.0 / int(c) if int(c) else 0.0 for c in counts]
        value = sums[0] * weights[0] + sums[1] * weights[1]
        if not with_grad:
            return value, ()
        side_weight = pairs.sim.new_tensor(weights)
        start = 0
        for block in self.blocks(pairs):
            rows = slice(start, start + block.sim.shape[0])
            start = rows.stop
            grad_sim[rows].mul_(torch.where(block.pos, side_weight[0], side_weight[1]))
        grad_query = side_rows[0] * weights[0] + side_rows[1] * weights[1]
        grad_ref = side_cols[0] * weights[0] + side_cols[1] * weights[1]
        return value, (grad_sim, grad_query, grad_ref)
