"""Pair mining of the multi-similarity paper (Wang et al., CVPR 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from crossmodal.losses.pairs import PairBatch
from crossmodal.sampling.miners.base import Miner


class MultiSimilarityMiner(Miner):
    """Keep the informative pairs by relative cosine similarity ``S``::

        negative n of anchor i kept if  S_in + ε > min_{p∈P_i} S_ip
        positive p of anchor i kept if  S_ip − ε < max_{n∈N_i} S_in

    ``epsilon`` defaults to 0.1 (the paper's margin). Anchors without a positive keep no
    negative and anchors without a negative keep no positive (the comparisons are
    against an empty set).
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = epsilon

    def mine(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        sim = pairs.sim
        min_pos = torch.where(pairs.pos, sim, float("inf")).amin(1, keepdim=True)
        max_neg = torch.where(pairs.neg, sim, float("-inf")).amax(1, keepdim=True)
        neg = pairs.neg & (sim + self.epsilon > min_pos)
        pos = pairs.pos & (sim - self.epsilon < max_neg)
        return pos, neg
