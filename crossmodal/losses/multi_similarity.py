"""Multi-similarity loss (Wang et al., CVPR 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import lse_rows
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

    def block_forward(self, pairs: PairBatch) -> tuple[Tensor, dict]:
        losses, valids, pos_parts, neg_parts = [], [], [], []
        for block in self.blocks(pairs):
            shifted = block.sim - self.base
            pos, neg = block.pos, block.neg
            # log(1 + Σ exp(x)) = softplus(LSE(x)); 0 for an empty set.
            pos_part = F.softplus(lse_rows(shifted * -self.alpha, pos))
            neg_part = F.softplus(lse_rows(shifted * self.beta, neg))
            losses.append(pos_part / self.alpha + neg_part / self.beta)
            valids.append(pos.any(1) | neg.any(1))
            pos_parts.append(pos_part)
            neg_parts.append(neg_part)
        loss, valid = torch.cat(losses), torch.cat(valids)
        n_valid = int(valid.sum())
        value = torch.where(valid, loss, 0.0).sum() / max(n_valid, 1)
        state = {
            "pos_part": torch.cat(pos_parts),
            "neg_part": torch.cat(neg_parts),
            "valid": valid,
            "n_valid": n_valid,
        }
        return value, state

    def block_backward(self, pairs: PairBatch, state: dict, grad: Tensor) -> tuple:
        grad_sim = torch.zeros_like(pairs.sim)
        if state["n_valid"]:
            # d/dS_ip = −exp(x_ip) / (1 + Σ_P exp(x)), d/dS_in = exp(x_in) / (1 + Σ_N exp(x)).
            weight = (grad / state["n_valid"]) * state["valid"]
            start = 0
            for block in self.blocks(pairs):
                rows = slice(start, start + block.sim.shape[0])
                start = rows.stop
                shifted = block.sim - self.base
                pos, neg = block.pos, block.neg
                exponent = torch.where(
                    pos,
                    shifted * -self.alpha - state["pos_part"][rows, None],
                    shifted * self.beta - state["neg_part"][rows, None],
                )
                terms = exponent.exp_()
                out = torch.where(pos, -terms, terms).masked_fill_(~(pos | neg), 0.0)
                torch.mul(out, weight[rows, None], out=grad_sim[rows])
        return (grad_sim,)
