"""Circle loss, pair form (Sun et al., CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import finite_or_zero, lse_rows
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

    def _logits(self, sim: Tensor, pos: Tensor) -> tuple[Tensor, Tensor]:
        """Circle logits (positives: −γ α_p (s − Δ_p), negatives: γ α_n (s − Δ_n)) and
        the weights' derivative factors (−γ α_p, γ α_n) as one matrix each."""
        alpha = torch.where(pos, (1.0 + self.m) - sim, sim + self.m).clamp_min_(0.0)
        factor = torch.where(pos, alpha * -self.gamma, alpha * self.gamma)
        logits = torch.where(pos, sim - (1.0 - self.m), sim - self.m).mul_(factor)
        return logits, factor

    def block_forward(self, pairs: PairBatch) -> tuple[Tensor, dict]:
        losses, valids, lse_ps, lse_ns = [], [], [], []
        for block in self.blocks(pairs):
            pos, neg = block.pos, block.neg
            logits, _ = self._logits(block.sim, pos)
            lse_p, lse_n = lse_rows(logits, pos), lse_rows(logits, neg)
            losses.append(F.softplus(lse_p + lse_n))
            valids.append(pos.any(1) & neg.any(1))
            lse_ps.append(lse_p)
            lse_ns.append(lse_n)
        loss, valid = torch.cat(losses), torch.cat(valids)
        n_valid = int(valid.sum())
        value = torch.where(valid, loss, 0.0).sum() / max(n_valid, 1)
        lse_p, lse_n = torch.cat(lse_ps), torch.cat(lse_ns)
        state = {"lse_p": lse_p, "lse_n": lse_n, "valid": valid, "n_valid": n_valid}
        return value, state

    def block_backward(self, pairs: PairBatch, state: dict, grad: Tensor) -> tuple:
        grad_sim = torch.zeros_like(pairs.sim)
        if state["n_valid"]:
            # ℓ = softplus(L_p + L_n): dℓ/ds_j = σ(L_p + L_n) · softmax_side(logits)_j · factor_j
            valid = state["valid"]
            lse_p = finite_or_zero(state["lse_p"])
            lse_n = finite_or_zero(state["lse_n"])
            weight = torch.sigmoid(lse_p + lse_n) * valid * (grad / state["n_valid"])
            start = 0
            for block in self.blocks(pairs):
                rows = slice(start, start + block.sim.shape[0])
                start = rows.stop
                pos, neg = block.pos, block.neg
                logits, factor = self._logits(block.sim, pos)
                shift = torch.where(pos, lse_p[rows, None], lse_n[rows, None])
                out = logits.sub_(shift).exp_().mul_(factor).masked_fill_(~(pos | neg), 0.0)
                torch.mul(out, weight[rows, None], out=grad_sim[rows])
        return (grad_sim,)
