"""Multi-class N-pair loss (Sohn, NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss, log_total, masked_exp, safe_div
from crossmodal.losses.pairs import PairBatch


class NPairLoss(BlockwiseLoss):
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

    The regulariser acts only on embeddings that are not unit vectors. The
    :class:`~crossmodal.model.CrossModalModel` L2-normalises its embeddings (one
    normalisation, shared by training, evaluation and retrieval), so in the training
    pipeline every squared norm is 1: the regulariser adds the constant ``reg_weight``
    to the value and nothing to the gradient. It is kept so the logged ``npair`` values
    stay comparable with earlier runs and so the loss is the paper's for callers who pass
    raw features; applying it before the model's normalisation would need the model to
    return un-normalised embeddings as well, which it does not.

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
        total, n_valid = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for rows, block in self.blocks(pairs):
            # The paper's scale 1 needs no pass over the block (nothing below writes to it).
            logits = block.sim if self.scale == 1 else block.sim * self.scale
            exps, norm, shift = masked_exp(logits, block.neg_f, block.neg_count)
            neg_lse = log_total(norm, shift)
            index, used = block.positive_slots()
            # ℓ_ip = softplus(R_i − z_ip) at each positive slot; softplus(-inf) = 0 gives
            # an anchor without negatives log(1 + 0) = 0.
            gap = neg_lse - logits.gather(1, index)
            inv_pos = 1.0 / block.pos_count.clamp_min(1.0)
            total += (torch.where(used, F.softplus(gap), 0.0).sum(1, keepdim=True) * inv_pos).sum()
            n_valid += (block.pos_count > 0).sum()
            if with_grad:
                # dℓ_ip/dz_ip = −σ(R_i − z_ip); dℓ_ip/dz_in = σ(R_i − z_ip) · softmax_N(z)_n.
                sig = torch.where(used, torch.sigmoid(gap), 0.0)
                grad = safe_div(exps, norm).mul_(sig.sum(1, keepdim=True))
                grad.scatter_add_(1, index, -sig)
                torch.mul(grad, inv_pos * self.scale, out=grad_sim[rows])
        # Without a valid anchor total and gradients are 0: divide by 1.
        n_valid = n_valid.clamp_min(1.0)
        value = total / n_valid
        if not with_grad:
            return value, ()
        grad_sim.div_(n_valid)
        return value, (grad_sim,)

    def compute(self, pairs: PairBatch) -> Tensor:
        loss = super().compute(pairs)
        if self.reg_weight:
            # In the graph through query/ref (the cached norms may come from the
            # gradient-free evaluation).
            reg = pairs.query.pow(2).sum(1).mean()
            if not pairs.self_ref:
                reg = 0.5 * (reg + pairs.ref.pow(2).sum(1).mean())
            loss = loss + self.reg_weight * reg
        return loss
