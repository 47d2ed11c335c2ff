"""Circle loss, pair form (Sun et al., CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.blockwise import (
    BlockwiseLoss,
    log_total,
    masked_exp,
    safe_div,
    slot_logsumexp,
)
from crossmodal.losses.pairs import PairBatch


class CircleLoss(BlockwiseLoss):
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

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        grad_sim = torch.zeros_like(pairs.sim) if with_grad else None
        total, n_valid = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for rows, block in self.blocks(pairs):
            # Negatives over the row: γ α_n (s − Δ_n), α_n = [s + m]_+ held constant.
            neg_factor = (block.sim + self.m).clamp_min_(0.0).mul_(self.gamma)
            neg_logits = (block.sim - self.m).mul_(neg_factor)
            neg_e, neg_total, neg_shift = masked_exp(neg_logits, block.neg_f, block.neg_count)
            # Positives (few) over their slots: −γ α_p (s − Δ_p), α_p = [1 + m − s]_+.
            index, used = block.positive_slots()
            pos_sim = block.sim.gather(1, index)
            pos_factor = (1.0 + self.m - pos_sim).clamp_min_(0.0).mul_(-self.gamma)
            pos_lse, pos_softmax = slot_logsumexp((pos_sim - (1.0 - self.m)) * pos_factor, used)
            both = pos_lse + log_total(neg_total, neg_shift)
            valid = (block.pos_count > 0) & (block.neg_count > 0)
            total += torch.where(valid, F.softplus(both), 0.0).sum()
            n_valid += valid.sum()
            if with_grad:
                # ℓ = softplus(L_p + L_n): dℓ/ds_j = σ(L_p + L_n) · softmax_side_j · factor_j
                weight = torch.where(valid, torch.sigmoid(both), 0.0)
                grad = safe_div(neg_e, neg_total).mul_(neg_factor)
                grad.scatter_add_(1, index, pos_softmax * pos_factor)
                torch.mul(grad, weight, out=grad_sim[rows])
        # Without a valid anchor total and gradients are 0: divide by 1.
        n_valid = n_valid.clamp_min(1.0)
        value = total / n_valid
        if not with_grad:
            return value, ()
        grad_sim.div_(n_valid)
        return value, (grad_sim,)
