"""Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss, distance_chain, slot_distance_chain
from crossmodal.losses.pairs import PairBatch


class ContrastiveLoss(BlockwiseLoss):
    """Margin contrastive loss on Euclidean distances of L2-normalised embeddings.

    With ``d_ij`` the distance between query ``i`` and reference ``j``::

        positive pair:  [d_ij − pos_margin]_+ ^ power
        negative pair:  [neg_margin − d_ij]_+ ^ power

    ``power=2``, ``pos_margin=0`` is Hadsell et al.'s loss (without their constant ½);
    ``power=1`` is pytorch-metric-learning's ``ContrastiveLoss``; ``power`` must be ≥ 1.

    ``neg_margin`` defaults to 1.6, not the customary 1. On unit vectors
    ``d = sqrt(2 − 2 cos)``: unrelated embeddings sit near cosine 0 (``d ≈ √2 ≈ 1.41``),
    and two freshly initialised towers of a cross-modal model start near cosine −0.07
    (``d ≈ 1.46``, spread ≈ 0.04). With a margin of 1 no negative pair is within it (they
    fire only above cosine 0.5): the loss only pulls positives together and collapses the
    space. The margin must sit clearly beyond the start: 1.5 (cosine −0.125) leaves about
    a sixth of the negatives out and the rest a short hinge, and in notebook 03's
    cross-modal task the pairs still drift together (test R@1 0.056, non-pair cosine
    0.66); 1.6 (cosine −0.28) holds all but a 4σ tail, with a mean hinge three times
    longer, and learns (0.131, non-pair cosine 0.08). On unimodal data (embeddings
    starting at positive cosines) 1.5 and 1.6 are level with each other and with PML's
    margin 1 (``bench/results/loss_quality.md``).
    Reduction: the mean of the non-zero positive terms plus the mean of the non-zero
    negative terms, so the many already-separated negatives do not dilute the few
    informative pairs; a side with no non-zero term contributes 0 (connected to the graph).
    """

    uses_distance = True

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.6,
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

    def _slope(self, hinge: Tensor, active: Tensor) -> Tensor:
        """d(hinge^power)/d(hinge), 0 where the hinge is inactive (``active`` is 0/1);
        may reuse ``hinge``'s buffer."""
        if self.power == 1:
            return active
        return hinge.pow_(self.power - 1).mul_(self.power)

    def _sum(self, hinge: Tensor) -> Tensor:
        return (hinge if self.power == 1 else hinge.pow(self.power)).sum()

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        sums = [pairs.sim.new_zeros(()), pairs.sim.new_zeros(())]
        counts = [pairs.sim.new_zeros(()), pairs.sim.new_zeros(())]
        grad_sim, _, _ = self.grad_buffers(pairs) if with_grad else (None,) * 3
        # Per side (positive, negative): gradients of the side's sum, before dividing by
        # the side's non-zero count, which is known only at the end.
        side_rows = [pairs.sim.new_zeros(pairs.sim.shape[0]) for _ in range(2)]
        side_cols = [pairs.sim.new_zeros(pairs.sim.shape[1]) for _ in range(2)]
        pos_slot_grads = []
        for rows, block in self.blocks(pairs):
            dist = block.distance()
            # Negatives over the row (its few full-matrix passes are the loss's cost),
            # positives (few) over their slots.
            neg_hinge = torch.rsub(dist, self.neg_margin).clamp_min_(0.0).mul_(block.neg_f)
            index, used = block.positive_slots()
            pos_hinge = (dist.gather(1, index) - self.pos_margin).clamp_min_(0.0).mul_(used)
            slopes = []
            for side, hinge in enumerate((pos_hinge, neg_hinge)):
                active = hinge.sign()
                counts[side] += active.sum()
                sums[side] += self._sum(hinge)
                slopes.append(self._slope(hinge, active) if with_grad else None)
            if with_grad:
                # d/d dist of the negatives' sum is −slope: passed as such (negated=True).
                side_rows[1][rows], cols = distance_chain(
                    block, slopes[1], False, grad_sim[rows], negated=True
                )
                side_cols[1] += cols
                slot_sim, side_rows[0][rows], cols = slot_distance_chain(
                    block, index, slopes[0], False
                )
                side_cols[0] += cols
                pos_slot_grads.append((rows, index, slot_sim))
        # 1 / count of each side's non-zero terms, 0 for a side without one.
        weights = [torch.where(c > 0, 1.0 / c.clamp_min(1.0), 0.0) for c in counts]
        value = sums[0] * weights[0] + sums[1] * weights[1]
        if not with_grad:
            return value, ()
        # Positives and negatives are disjoint entries: scale the negatives' gradient,
        # then add the positives' at their slots.
        grad_sim.mul_(weights[1])
        for rows, index, slot_sim in pos_slot_grads:
            grad_sim[rows].scatter_add_(1, index, slot_sim.mul_(weights[0]))
        grad_query = side_rows[0] * weights[0] + side_rows[1] * weights[1]
        grad_ref = side_cols[0] * weights[0] + side_cols[1] * weights[1]
        return value, (grad_sim, grad_query, grad_ref)
