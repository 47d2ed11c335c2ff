"""Circle loss, pair form (Sun et al., CVPR 2020)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, masked_logsumexp, mean_over
from crossmodal.losses.pairs import PairBatch


class CircleLoss(PairwiseLoss):
    """Circle loss with pair-wise labels, on cosine similarities ``s``::

        ℓ_i = log(1 + Σ_{n∈N_i} Σ_{p∈P_i} exp(γ (α_n (s_n − Δ_n) − α_p (s_p − Δ_p))))
        α_p = [1 + m − s_p]_+,  α_n = [s_n + m]_+,  Δ_p = 1 − m,  Δ_n = m

    computed as ``softplus(LSE_p(−γ α_p (s_p − Δ_p)) + LSE_n(γ α_n (s_n − Δ_n)))``. The
    weights ``α`` are treated as constants (no gradient), as in the paper's optimisation
    analysis and reference code. Defaults ``m=0.4, γ=80`` (the paper's fine-grained
    retrieval setting). Reduction: mean over anchors with at least one positive and one
    negative; 0 (connected) when none has both. The class-proxy form is
    :class:`~crossmodal.losses.ProxyCircleLoss`.
    """

    def __init__(
        self,
        m: float = 0.4,
        gamma: float = 80.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.m = m
        self.gamma = gamma

    def _rows(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        sim = pairs.sim
        fixed = sim.detach()
        pos, neg = pairs.pos, pairs.neg
        pos_logits = (-self.gamma * (1.0 + self.m - fixed).clamp_min(0.0)) * (sim - (1.0 - self.m))
        neg_logits = (self.gamma * (fixed + self.m).clamp_min(0.0)) * (sim - self.m)
        lse_p = masked_logsumexp(pos_logits, pos)
        lse_n = masked_logsumexp(neg_logits, neg)
        return F.softplus(lse_p + lse_n), pos.any(1) & neg.any(1)

    def compute(self, pairs: PairBatch) -> Tensor:
        return mean_over(*self.rowwise(pairs, self._rows), pairs)
