"""Batch-hard mining (Hermans, Beyer & Leibe, "In Defense of the Triplet Loss", 2017)."""

from __future__ import annotations

import torch
from torch import Tensor

from crossmodal.losses.pairs import PairBatch
from crossmodal.sampling.miners.base import Miner, one_hot_rows


class BatchHardMiner(Miner):
    """For each anchor: its farthest positive and its nearest negative.

    Distances are Euclidean between L2-normalised embeddings (the same order as cosine).
    Each anchor with at least one positive and one negative keeps exactly one positive
    and one negative (ties → the lowest reference index); other anchors keep nothing.
    With :class:`~crossmodal.losses.TripletMarginLoss` this is the batch-hard triplet loss.
    """

    def mine(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        dist = pairs.distance()
        keep = pairs.pos.any(1) & pairs.neg.any(1)
        hardest_pos = torch.where(pairs.pos, dist, float("-inf")).argmax(1)
        hardest_neg = torch.where(pairs.neg, dist, float("inf")).argmin(1)
        columns = dist.shape[1]
        return one_hot_rows(hardest_pos, keep, columns), one_hot_rows(hardest_neg, keep, columns)
