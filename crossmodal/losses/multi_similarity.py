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

    ``α=2, β=50`` (the paper's) and ``λ=base=0`` by default. The paper's λ = 0.5 assumes
    features whose cosines start high (ReLU CNN features); on unit vectors unrelated
    embeddings sit near cosine 0, and cross-modal towers start near −0.07, where a
    negative's weight ``exp(β (S − 0.5))`` is about e^−29: no negative is pushed away and
    the loss collapses the space. ``λ = 0``, the cosine of unrelated unit vectors, keeps
    the negatives in play from the start, and is as good on unimodal data
    (``bench/results/loss_quality.md``). The paper mines pairs first
    (:class:`~crossmodal.sampling.miners.MultiSimilarityMiner`); without a miner every pair is
    used. Reduction: mean of ``ℓ_i`` over anchors with at least one positive or negative
    term; 0 (connected) when none has one.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.0,
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
