"""Multi-similarity loss (Wang et al., CVPR 2019)."""

from __future__ import annotations

from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, masked_logsumexp, mean_over
from crossmodal.losses.pairs import PairBatch


class MultiSimilarityLoss(PairwiseLoss):
    """Multi-similarity loss on cosine similarities ``S``::

        ℓ_i = 1/α log(1 + Σ_{p∈P_i} exp(−α (S_ip − λ)))
            + 1/β log(1 + Σ_{n∈N_i} exp( β (S_in − λ)))

    ``α=2, β=50, λ=base=0.5`` by default. The paper mines pairs first
    (:class:`~crossmodal.miners.MultiSimilarityMiner`); without a miner every pair is
    used. Reduction: mean of ``ℓ_i`` over anchors with at least one positive or negative
    term; 0 (connected) when none has one.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if alpha <= 0 or beta <= 0:
            raise ValueError(f"alpha and beta must be > 0, got {alpha} and {beta}")
        self.alpha = alpha
        self.beta = beta
        self.base = base

    def _rows(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        shifted = pairs.sim - self.base
        pos, neg = pairs.pos, pairs.neg
        pos_part = masked_logsumexp(-self.alpha * shifted, pos, add_one=True) / self.alpha
        neg_part = masked_logsumexp(self.beta * shifted, neg, add_one=True) / self.beta
        return pos_part + neg_part, pos.any(1) | neg.any(1)

    def compute(self, pairs: PairBatch) -> Tensor:
        return mean_over(*self.rowwise(pairs, self._rows), pairs)
