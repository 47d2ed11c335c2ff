"""Multi-similarity loss (Wang et al., CVPR 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss, log_total, masked_exp, safe_div
from crossmodal.losses.pairs import PairBatch


class MultiSimilarityLoss(BlockwiseLoss):
    """Multi-similarity loss on cosine similarities ``S``::

        ℓ_i = 1/α log(1 + Σ_{p∈P_i} exp(−α (S_ip − λ)))
            + 1/β log(1 + Σ_{n∈N_i} exp( β (S_in − λ)))

    Defaults: the paper's ``α=2, λ=base=0.5`` with ``β=2`` (the paper's β is 50). A
    negative's gradient weight is ``w_n = exp(β (S_n − λ)) / (1 + Σ_N exp(β (S − λ)))``: a
    softmax over the negatives at temperature 1/β, its total scaled by λ against the 1.
    Cross-modal towers start with every cosine near −0.07 (spread ≈ 0.06): at β = 50
    (β times the spread ≈ 3) the weight sits on a handful of the batch's negatives
    (about 5 of 64 effectively, the top 3 taking two thirds) and, with λ = 0.5, vanishes
    (e^−28 each: the space collapses); at β = 2 it spreads evenly over all of them with a
    total near 1 (``tests/losses/test_defaults.py``). In notebook 03's cross-modal task
    β = 50 learns at neither λ 0.5 nor 0 (test R@1 0.006 and 0.037, chance 0.0125) and
    β = 2, λ = 0.5 does (0.163); β = 5 does not, although its starting weights are nearly
    as even, so the spread is not the whole cause. On digits it is level with PML's paper defaults
    (``bench/results/loss_quality.md``). The paper mines pairs first
    (:class:`~crossmodal.sampling.miners.MultiSimilarityMiner`); without a miner every pair is
    used. Reduction: mean of ``ℓ_i`` over anchors with at least one positive or negative
    term; 0 (connected) when none has one.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 2.0,
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

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        grad_sim = torch.zeros_like(pairs.sim) if with_grad else None
        total, n_valid = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for rows, block in self.blocks(pairs):
            # Negatives over the row; positives (few) over their slots.
            neg_e, neg_total, neg_shift = _one_plus(
                (block.sim - self.base).mul_(self.beta), block.neg_f, block.neg_count
            )
            index, used = block.positive_slots()
            pos_x = (block.sim.gather(1, index) - self.base) * -self.alpha
            pos_x = pos_x.masked_fill_(~used, float("-inf"))
            # log(1 + Σ exp(x)) = logaddexp(0, LSE(x)); 0 for an empty set.
            pos_lse = torch.logsumexp(pos_x, dim=1, keepdim=True)
            pos_part = torch.logaddexp(pos_lse, torch.zeros_like(pos_lse))
            loss = pos_part / self.alpha + log_total(neg_total, neg_shift) / self.beta
            valid = (block.pos_count > 0) | (block.neg_count > 0)
            total += torch.where(valid, loss, 0.0).sum()
            n_valid += valid.sum()
            if with_grad:
                # dℓ/dS_in = exp(x_in) / (1 + Σ_N exp x); dℓ/dS_ip = −exp(x_ip) / (1 + Σ_P exp x)
                grad = safe_div(neg_e, neg_total)
                grad.scatter_add_(1, index, -(pos_x - pos_part).exp_())
                torch.mul(grad, valid, out=grad_sim[rows])
        # Without a valid anchor total and gradients are 0: divide by 1.
        n_valid = n_valid.clamp_min(1.0)
        value = total / n_valid
        if not with_grad:
            return value, ()
        grad_sim.div_(n_valid)
        return value, (grad_sim,)


def _one_plus(x: Tensor, mask: Tensor, count: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`masked_exp` of ``x`` with an extra ``exp(0)`` term in every row's total."""
    e, total, shift = masked_exp(x, mask, count)
    new_shift = shift.clamp_min(0.0)
    rescale = (shift - new_shift).exp_()
    return e.mul_(rescale), total.mul_(rescale).add_((-new_shift).exp_()), new_shift
