"""Multi-class N-pair loss (Sohn, NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import log_total, masked_exp, safe_div
from crossmodal.losses.pairs import PairBatch


class NPairLoss(PairwiseLoss):
    """N-pair loss with the paper's embedding-norm regulariser.

    For an anchor ``i``, a positive ``p`` and the anchor's negatives ``N_i``, with
    ``f_i·f_j`` the inner product of the (by default raw, unnormalised) embeddings::

        ℓ_ip = log(1 + Σ_{n∈N_i} exp(s·f_i·f_n − s·f_i·f_p))

    The paper has one positive per anchor (its negatives are the other classes'
    positives); with several, ``ℓ_i`` is the mean of ``ℓ_ip`` over the anchor's positives.
    The loss is the mean of ``ℓ_i`` over anchors with at least one positive, plus
    ``reg_weight`` × the mean squared norm of the embeddings (queries, and references when
    ``ref_emb`` is given, each side weighted ½) — the paper's L2 regulariser that keeps
    the unnormalised embeddings from growing to shrink the loss.

    Args:
        scale: ``s`` multiplying the inner products (1 in the paper; useful > 1 when
            ``normalize=True`` bounds them to [-1, 1]).
        reg_weight: weight of the norm regulariser (default 0.002; 0 disables it).
        normalize: L2-normalise first (cosine). Default False, as in the paper.
    """

    def __init__(
        self,
        scale: float = 1.0,
        reg_weight: float = 0.002,
        normalize: bool = False,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if reg_weight < 0:
            raise ValueError(f"reg_weight must be >= 0, got {reg_weight}")
        self.scale = scale
        self.reg_weight = reg_weight

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        grad_sim = torch.zeros_like(pairs.sim) if with_grad else None
        total, n_valid = pairs.sim.new_zeros(()), 0
        for rows, block in self.blocks(pairs):
            logits = block.sim * self.scale
            exps, norm, shift = masked_exp(logits, block.neg_f, block.neg_count)
            neg_lse = log_total(norm, shift)
            index, used = block.positive_slots()
            # ℓ_ip = softplus(R_i − z_ip) at each positive slot; softplus(-inf) = 0 gives
            # an anchor without negatives log(1 + 0) = 0.
            gap = neg_lse - logits.gather(1, index)
            inv_pos = 1.0 / block.pos_count.clamp_min(1.0)
            total += (torch.where(used, F.softplus(gap), 0.0).sum(1, keepdim=True) * inv_pos).sum()
            n_valid += int((block.pos_count > 0).sum())
            if with_grad:
                # dℓ_ip/dz_ip = −σ(R_i − z_ip); dℓ_ip/dz_in = σ(R_i − z_ip) · softmax_N(z)_n.
                sig = torch.where(used, torch.sigmoid(gap), 0.0)
                grad = safe_div(exps, norm).mul_(sig.sum(1, keepdim=True))
                grad.scatter_add_(1, index, -sig)
                torch.mul(grad, inv_pos * self.scale, out=grad_sim[rows])
        value = total / max(n_valid, 1)
        if not with_grad:
            return value, ()
        if n_valid:
            grad_sim.div_(n_valid)
        return value, (grad_sim,)

    def compute(self, pairs: PairBatch) -> Tensor:
        loss = super().compute(pairs)
        if self.reg_weight:
            if pairs.self_ref:
                reg = pairs.query_sqnorm.mean()
            else:
                reg = 0.5 * (pairs.query_sqnorm.mean() + pairs.ref_sqnorm.mean())
            loss = loss + self.reg_weight * reg
        return loss
