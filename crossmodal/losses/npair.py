"""Multi-class N-pair loss (Sohn, NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import finite_or_zero, lse_rows
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

    def block_forward(self, pairs: PairBatch) -> tuple[Tensor, dict]:
        losses, neg_lses, counts = [], [], []
        for block in self.blocks(pairs):
            logits = block.sim * self.scale
            pos = block.pos
            neg_lse = lse_rows(logits, block.neg)
            # softplus(-inf) = 0: an anchor without negatives has log(1 + 0) = 0 per positive.
            per_pair = torch.where(pos, F.softplus(neg_lse[:, None] - logits), 0.0)
            num_pos = pos.sum(1)
            losses.append(per_pair.sum(1) / num_pos.clamp_min(1))
            neg_lses.append(neg_lse)
            counts.append(num_pos)
        loss, num_pos = torch.cat(losses), torch.cat(counts)
        n_valid = int((num_pos > 0).sum())
        value = torch.where(num_pos > 0, loss, 0.0).sum() / max(n_valid, 1)
        return value, {"neg_lse": torch.cat(neg_lses), "num_pos": num_pos, "n_valid": n_valid}

    def block_backward(self, pairs: PairBatch, state: dict, grad: Tensor) -> tuple:
        grad_sim = torch.zeros_like(pairs.sim)
        if state["n_valid"]:
            # ℓ_ip = softplus(R_i − z_ip), R_i = LSE_N(z):  dℓ_ip/dz_ip = −σ(R_i − z_ip),
            # dℓ_ip/dz_in = σ(R_i − z_ip) · softmax_N(z)_n.
            weight = (grad / state["n_valid"]) / state["num_pos"].clamp_min(1)
            weight = weight * (state["num_pos"] > 0) * self.scale
            neg_lse = state["neg_lse"]
            start = 0
            for block in self.blocks(pairs):
                rows = slice(start, start + block.sim.shape[0])
                start = rows.stop
                logits = block.sim * self.scale
                pos, neg = block.pos, block.neg
                lse = neg_lse[rows, None]
                sig = torch.where(pos, torch.sigmoid(lse - logits), 0.0)
                neg_prob = torch.where(neg, (logits - finite_or_zero(lse)).exp_(), 0.0)
                out = neg_prob.mul_(sig.sum(1, keepdim=True)).sub_(sig)
                torch.mul(out, weight[rows, None], out=grad_sim[rows])
        return (grad_sim,)

    def compute(self, pairs: PairBatch) -> Tensor:
        loss = super().compute(pairs)
        if self.reg_weight:
            if pairs.self_ref:
                reg = pairs.query_sqnorm.mean()
            else:
                reg = 0.5 * (pairs.query_sqnorm.mean() + pairs.ref_sqnorm.mean())
            loss = loss + self.reg_weight * reg
        return loss
