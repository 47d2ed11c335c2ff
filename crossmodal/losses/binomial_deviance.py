"""Binomial deviance loss (Yi, Lei, Liao & Li, ICPR 2014), written for autograd."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import AutogradPairwiseLoss


class BinomialDevianceLoss(AutogradPairwiseLoss):
    """Binomial deviance on cosine similarities ``S``::

        positive pair:  log(1 + exp(−α (S_ij − β)))
        negative pair:  log(1 + exp( α C (S_ij − β)))

    ``α=2, β=0.5, C=neg_cost=25`` (the paper's; ``C`` weighs the many negatives up
    against the few positives). Reduction: the mean over positive pairs plus the mean
    over negative pairs; a side without pairs contributes 0 (connected to the graph).
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 0.5,
        neg_cost: float = 25.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        self.alpha, self.beta, self.neg_cost = alpha, beta, neg_cost

    def similarity_loss(self, sim: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        pos_terms = F.softplus(-self.alpha * (sim - self.beta)) * pos
        neg_terms = F.softplus(self.alpha * self.neg_cost * (sim - self.beta)) * neg
        # clamp_min(1): an empty side sums to 0 and stays 0, without a host-side check.
        return pos_terms.sum() / pos.sum().clamp_min(1) + neg_terms.sum() / neg.sum().clamp_min(1)
