"""Triplet margin loss over all triplets of the batch, without enumerating them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss, distance_chain
from crossmodal.losses.pairs import PairBatch


def _sorted_negatives(dist: Tensor, neg: Tensor, margin: float) -> Tensor:
    """Each row's negative distances ascending; non-negatives sort last (above every
    threshold ``d + margin``)."""
    above_all = dist.max() + abs(margin) + 1.0
    return torch.where(neg, dist, above_all).sort(dim=1).values


class TripletMarginLoss(BlockwiseLoss):
    """Triplet loss ``[d(a, p) − d(a, n) + margin]_+`` over every (anchor, positive, negative).

    Triplets are all (i, p, n) with ``pos[i, p]`` and ``neg[i, n]`` (a miner narrows the
    masks, e.g. :class:`~crossmodal.sampling.miners.BatchHardMiner` gives one triplet per anchor).
    Distances are Euclidean between L2-normalised embeddings (squared with
    ``squared=True``, FaceNet's choice). Reduction: the mean over triplets with a non-zero
    term ("batch all ≠ 0" of Hermans et al. 2017, also pytorch-metric-learning's
    default); 0 (connected) when no triplet violates the margin.

    The triplets are never enumerated. With at most ``slot_limit`` positives per anchor
    each positive "slot" is one pass over the anchor's row; with more, a per-row sort of
    the negative distances gives, for a positive with threshold ``t = d_ap + m``, the
    violating negatives as a prefix: hinge sum ``count · t − prefix_sum``, O(N_r log N_r)
    per anchor whatever the number of positives.
    """

    slot_limit = 16
    uses_distance = True

    def __init__(
        self,
        margin: float = 0.2,
        squared: bool = False,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        self.margin = margin
        self.squared = squared

    def _block(self, block: PairBatch, grad_dist: Tensor | None) -> tuple[Tensor, Tensor]:
        """Σ and count of the non-zero hinges of one block; with ``grad_dist``, adds
        ∂(Σ hinges)/∂d to it: +#violating negatives at each positive, −#violating
        positives at each negative."""
        total = block.sim.new_zeros(())
        index, used = block.positive_slots()
        dist = block.distance(squared=self.squared)
        if index.shape[1] <= self.slot_limit:
            thresholds = (dist.gather(1, index) + self.margin).masked_fill_(~used, float("-inf"))
            per_positive = torch.zeros_like(thresholds)
            # Non-negatives moved beyond every threshold never violate a margin.
            beyond = thresholds.max().clamp_min(0.0) + 1.0
            neg_dist = (block.neg_f - 1.0).mul_(-beyond).add_(dist)
            for slot in range(index.shape[1]):
                hinge = (thresholds[:, slot : slot + 1] - neg_dist).clamp_min_(0.0)
                total += hinge.sum()
                active = hinge.sign_()
                per_positive[:, slot] = active.sum(1)
                if grad_dist is not None:
                    grad_dist.sub_(active)
            if grad_dist is not None:
                grad_dist.scatter_add_(1, index, per_positive)
            return total, per_positive.sum()
        pos, neg = block.pos, block.neg
        neg_sorted = _sorted_negatives(dist, neg, self.margin)
        thresholds = dist + self.margin
        below = torch.searchsorted(neg_sorted, thresholds)
        # Prefix sums in float64: count · t − prefix cancels, float32 would lose small hinges.
        prefix = torch.cat(
            [neg_sorted.new_zeros(neg_sorted.shape[0], 1).double(), neg_sorted.double().cumsum(1)],
            dim=1,
        ).gather(1, below)
        hinge = below.double() * thresholds.double() - prefix
        total += torch.where(pos, hinge, 0.0).sum().to(total.dtype)
        if grad_dist is not None:
            sorted_thresholds = torch.where(pos, thresholds, float("-inf")).sort(dim=1).values
            above = dist.shape[1] - torch.searchsorted(sorted_thresholds, dist, right=True)
            grad_dist += torch.where(pos, below, 0).to(grad_dist.dtype)
            grad_dist -= torch.where(neg, above, 0).to(grad_dist.dtype)
        return total, torch.where(pos, below, 0).sum()

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        grad_sim, grad_query, grad_ref = self.grad_buffers(pairs) if with_grad else (None,) * 3
        total, count = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for rows, block in self.blocks(pairs):
            grad_dist = torch.zeros_like(block.sim) if with_grad else None
            block_total, block_count = self._block(block, grad_dist)
            total += block_total
            count += block_count
            if grad_dist is not None:
                grad_query[rows], ref_part = distance_chain(
                    block, grad_dist, self.squared, grad_sim[rows]
                )
                grad_ref += ref_part
        # No term: total and gradients are 0, divided by 1.
        count = count.clamp_min(1.0)
        value = total / count
        if not with_grad:
            return value, ()
        for grad in (grad_sim, grad_query, grad_ref):
            grad.div_(count)
        return value, (grad_sim, grad_query, grad_ref)
