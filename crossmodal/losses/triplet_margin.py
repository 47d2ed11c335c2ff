"""Triplet margin loss over all triplets of the batch, without enumerating them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import distance_backward
from crossmodal.losses.pairs import PairBatch


def _positive_slots(dist: Tensor, pos: Tensor, max_pos: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each row's positives as ``max_pos`` slots: (distances, column indices, slot used)."""
    values, index = torch.where(pos, dist, float("-inf")).topk(max_pos, dim=1)
    used = torch.arange(max_pos, device=dist.device)[None, :] < pos.sum(1, keepdim=True)
    return values, index, used


def _sorted_negatives(dist: Tensor, neg: Tensor, margin: float) -> Tensor:
    """Each row's negative distances ascending; non-negatives sort last (above every
    threshold ``d + margin``)."""
    above_all = dist.max() + abs(margin) + 1.0
    return torch.where(neg, dist, above_all).sort(dim=1).values


class TripletMarginLoss(PairwiseLoss):
    """Triplet loss ``[d(a, p) − d(a, n) + margin]_+`` over every (anchor, positive, negative).

    Triplets are all (i, p, n) with ``pos[i, p]`` and ``neg[i, n]`` (a miner narrows the
    masks, e.g. :class:`~crossmodal.miners.BatchHardMiner` gives one triplet per anchor).
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

    def _block_sums(self, block: PairBatch) -> tuple[Tensor, Tensor]:
        """Σ and count of the non-zero hinges of one block."""
        pos, neg = block.pos, block.neg
        total = block.sim.new_zeros(())
        count = torch.zeros((), dtype=torch.long, device=pos.device)
        max_pos = int(pos.sum(1).max())
        if max_pos == 0:
            return total, count
        dist = block.distance(squared=self.squared)
        if max_pos <= self.slot_limit:
            pos_dist, _, used = _positive_slots(dist, pos, max_pos)
            thresholds = torch.where(used, pos_dist + self.margin, float("-inf"))
            not_neg = ~neg
            for slot in range(max_pos):
                hinge = (thresholds[:, slot : slot + 1] - dist).masked_fill_(not_neg, 0.0)
                hinge.clamp_min_(0.0)
                total += hinge.sum()
                count += (hinge > 0).sum()
            return total, count
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
        count += torch.where(pos, below, 0).sum()
        return total, count

    def _block_grad_dist(self, block: PairBatch) -> Tensor:
        """∂(Σ hinges)/∂d for one block: +#violated negatives at each positive,
        −#violating positives at each negative."""
        pos, neg = block.pos, block.neg
        dist = block.distance(squared=self.squared)
        grad = torch.zeros_like(dist)
        max_pos = int(pos.sum(1).max())
        if max_pos == 0:
            return grad
        if max_pos <= self.slot_limit:
            pos_dist, index, used = _positive_slots(dist, pos, max_pos)
            for slot in range(max_pos):
                threshold = torch.where(
                    used[:, slot], pos_dist[:, slot] + self.margin, float("-inf")
                )
                active = (threshold[:, None] > dist) & neg
                grad -= active.to(grad.dtype)
                per_positive = active.sum(1, keepdim=True).to(grad.dtype)
                grad.scatter_add_(1, index[:, slot : slot + 1], per_positive)
            return grad
        neg_sorted = _sorted_negatives(dist, neg, self.margin)
        below = torch.searchsorted(neg_sorted, dist + self.margin)
        thresholds_sorted = torch.where(pos, dist + self.margin, float("-inf")).sort(dim=1).values
        at_or_below = torch.searchsorted(thresholds_sorted, dist, right=True)
        above = dist.shape[1] - at_or_below
        grad += torch.where(pos, below, 0).to(grad.dtype)
        grad -= torch.where(neg, above, 0).to(grad.dtype)
        return grad

    def block_forward(self, pairs: PairBatch) -> tuple[Tensor, dict]:
        total = pairs.sim.new_zeros(())
        count = 0
        for block in self.blocks(pairs):
            block_total, block_count = self._block_sums(block)
            total += block_total
            count += int(block_count)
        value = total / count if count else total * 0.0
        return value, {"count": count}

    def block_backward(self, pairs: PairBatch, state: dict, grad: Tensor) -> tuple:
        weight = grad / state["count"] if state["count"] else grad * 0.0
        grad_sim = torch.empty_like(pairs.sim)
        grad_query = torch.empty_like(pairs.query_sqnorm)
        grad_ref = torch.zeros_like(pairs.ref_sqnorm)
        start = 0
        for block in self.blocks(pairs):
            rows = slice(start, start + block.sim.shape[0])
            start = rows.stop
            grad_dist = self._block_grad_dist(block).mul_(weight)
            grad_sim[rows], grad_query[rows], ref_part = distance_backward(
                block, grad_dist, self.squared
            )
            grad_ref += ref_part
        return grad_sim, grad_query, grad_ref
