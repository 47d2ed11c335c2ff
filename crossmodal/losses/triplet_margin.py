"""Triplet margin loss over all triplets of the batch, without enumerating them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, ratio_or_zero
from crossmodal.losses.pairs import PairBatch


def _hinge_by_slots(
    dist: Tensor, pos: Tensor, neg: Tensor, margin: float, max_pos: int
) -> tuple[Tensor, Tensor]:
    """Per row: Σ and count of the non-zero ``[d_ap + m − d_an]_+``, one positive slot at a time.

    Cost O(max_pos · n · N_r): the fast path for class-balanced batches (few positives).
    """
    num_pos = pos.sum(1)
    pos_dist = torch.where(pos, dist, float("-inf")).topk(max_pos, dim=1).values
    slot_used = torch.arange(max_pos, device=dist.device)[None, :] < num_pos[:, None]
    thresholds = torch.where(slot_used, pos_dist + margin, float("-inf"))
    not_neg = ~neg
    total = dist.new_zeros(dist.shape[0])
    count = torch.zeros(dist.shape[0], dtype=torch.long, device=dist.device)
    for slot in range(max_pos):
        hinge = (thresholds[:, slot : slot + 1] - dist).masked_fill_(not_neg, 0.0).clamp_min(0.0)
        total = total + hinge.sum(1)
        count += (hinge > 0).sum(1)
    return total, count


def _hinge_by_sorting(
    dist: Tensor, pos: Tensor, neg: Tensor, margin: float
) -> tuple[Tensor, Tensor]:
    """Same per-row sums in O(n · N_r log N_r) for any number of positives.

    For a positive ``p`` with threshold ``t = d_ap + m``, the anchor's negatives below
    ``t`` are a prefix of its sorted negative distances: the hinge sum is
    ``count · t − prefix_sum``. Gradients flow through the sort and the cumulative sum.
    """
    above_all = dist.detach().max() + abs(margin) + 1.0
    neg_sorted = torch.where(neg, dist, above_all).sort(dim=1).values
    thresholds = dist + margin
    below = torch.searchsorted(neg_sorted.detach(), thresholds.detach().contiguous())
    # Prefix sums in float64: count · t − prefix cancels, float32 would lose the small hinges.
    prefix = torch.cat(
        [
            neg_sorted.new_zeros(neg_sorted.shape[0], 1, dtype=torch.float64),
            neg_sorted.double().cumsum(1),
        ],
        dim=1,
    ).gather(1, below)
    hinge = below.to(torch.float64) * thresholds.double() - prefix
    total = torch.where(pos, hinge, 0.0).sum(1).to(dist.dtype)
    count = torch.where(pos, below, 0).sum(1)
    return total, count


class TripletMarginLoss(PairwiseLoss):
    """Triplet loss ``[d(a, p) − d(a, n) + margin]_+`` over every (anchor, positive, negative).

    Triplets are all (i, p, n) with ``pos[i, p]`` and ``neg[i, n]`` (a miner narrows the
    masks, e.g. :class:`~crossmodal.miners.BatchHardMiner` gives one triplet per anchor).
    Distances are Euclidean between L2-normalised embeddings (squared with
    ``squared=True``, FaceNet's choice). Reduction: the mean over triplets with a non-zero
    term ("batch all ≠ 0" of Hermans et al. 2017, also pytorch-metric-learning's
    default); 0 (connected) when no triplet violates the margin.

    The triplets are never enumerated: per positive slot the hinge is one pass over the
    anchor's row, and above ``slot_limit`` positives per anchor a per-row sort of the
    negative distances gives the same sums in O(N_r log N_r) per anchor.
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

    def _rows(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        pos, neg = pairs.pos, pairs.neg
        max_pos = int(pos.sum(1).max())
        if max_pos == 0:
            zeros = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
            return pairs.sim.sum(1) * 0.0, zeros
        dist = pairs.distance(squared=self.squared)
        if max_pos <= self.slot_limit:
            return _hinge_by_slots(dist, pos, neg, self.margin, max_pos)
        return _hinge_by_sorting(dist, pos, neg, self.margin)

    def compute(self, pairs: PairBatch) -> Tensor:
        total, count = self.rowwise(pairs, self._rows)
        return ratio_or_zero(total.sum(), count.sum(), pairs)
