"""Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import distance_chain
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
        for block in self.blocks(pairs):
            for side, terms in enumerate(self._terms(block)):
                counts[side] += (terms > 0).sum()
                sums[side] += (terms if self.power == 1 else terms.pow(self.power)).sum()
        weights = [1.0 / int(c) if int(c) else 0.0 for c in counts]
        value = sums[0] * weights[0] + sums[1] * weights[1]
        if not with_grad:
            return value, ()
        # The normalisers (non-zero counts) are known only now: a second pass writes the
        # gradient, d/dd = power · hinge^(power−1) / count on each side.
        grad_sim, grad_query, grad_ref = self.grad_buffers(pairs)
        start = 0
        for block in self.blocks(pairs):
            rows = slice(start, start + block.sim.shape[0])
            start = rows.stop
            pos_terms, neg_terms = self._terms(block)
            grad_dist = self._slope(pos_terms).mul_(weights[0])
            grad_dist.sub_(self._slope(neg_terms).mul_(weights[1]))
            grad_query[rows], ref_part = distance_chain(block, grad_dist, False, grad_sim[rows])
            grad_ref += ref_part
        return value, (grad_sim, grad_query, grad_ref)
