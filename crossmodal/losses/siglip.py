"""SigLIP's sigmoid pairwise loss (Zhai, Mustafa, Kolesnikov & Beyer, ICCV 2023)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss
from crossmodal.losses.pairs import PairBatch


class SigLIPLoss(BlockwiseLoss):
    """Sigmoid loss: every pair is its own binary problem, no softmax over the batch::

        ℓ = −1/|B| Σ_i Σ_j log σ( z_ij (t · cos(q_i, r_j) + b) )

    ``z_ij = +1`` for a positive pair (same label, so several positives per row work),
    ``−1`` for a negative; pairs that are neither (the diagonal of a self-comparison, pairs
    a miner removed) add nothing. ``|B|`` is the number of queries (rows), as in the paper.
    The temperature ``t = exp(t')`` and the bias ``b`` are learnable, initialised at the
    paper's ``t' = log 10`` and ``b = −10``: the bias starts the many negatives at a small
    loss, so the first steps are not spent pushing them down. ``learnable=False`` keeps
    both fixed.

    The double sum is symmetric in queries and references, so one direction already
    trains both modalities; ``symmetric=True`` averages the two equal-sized directions,
    which for the same pairs gives the same value. Computed by row blocks with its
    closed-form gradient (:class:`~crossmodal.losses.blockwise.BlockwiseLoss`).
    """

    def __init__(
        self,
        temperature_init: float = 10.0,
        bias_init: float = -10.0,
        learnable: bool = True,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if temperature_init <= 0:
            raise ValueError(f"temperature_init must be > 0, got {temperature_init}")
        self.learnable = learnable
        log_t = torch.tensor(math.log(temperature_init))
        bias = torch.tensor(float(bias_init))
        if learnable:
            self.log_temperature = nn.Parameter(log_t)
            self.bias = nn.Parameter(bias)
        else:
            self.register_buffer("log_temperature", log_t)
            self.register_buffer("bias", bias)

    @property
    def logit_scale(self) -> Tensor:
        """``t = exp(t')``, the multiplier of the cosines (a 0-dim tensor)."""
        return self.log_temperature.exp()

    def grad_params(self) -> tuple[Tensor, ...]:
        return (self.log_temperature, self.bias) if self.learnable else ()

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        dtype = pairs.sim.dtype
        scale = self.logit_scale.detach().to(dtype)
        bias = self.bias.detach().to(dtype)
        grad_sim = torch.zeros_like(pairs.sim) if with_grad else None
        total = pairs.sim.new_zeros(())
        grad_scale, grad_bias = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        # Every reference is a positive or a negative unless the diagonal (self case) or
        # a miner removed some: known from the call's structure, not from the masks.
        every_reference = not pairs.self_ref and not pairs.masks
        for rows, block in self.blocks(pairs):
            # x = −z (t s + b): the term is softplus(x) = −log σ(z (t s + b)).
            sign = block.neg_f - block.pos_f  # −z on pairs, 0 on pairs that are neither
            x = (block.sim * scale + bias).mul_(sign)
            terms = F.softplus(x)
            total += (
                terms.sum() if every_reference else torch.dot(terms.view(-1), sign.abs().view(-1))
            )
            if with_grad:
                # d term / d logit = σ(x) · (−z).
                grad_logits = torch.sigmoid_(x).mul_(sign)
                grad_bias += grad_logits.sum()
                grad_scale += torch.dot(grad_logits.view(-1), block.sim.reshape(-1))
                torch.mul(grad_logits, scale, out=grad_sim[rows])
        n = pairs.sim.shape[0]
        value = total / n
        if not with_grad:
            return value, ()
        grad_sim.div_(n)
        if not self.learnable:
            return value, (grad_sim,)
        # d/d t' = d/d t · t.
        grad_log_t = (grad_scale * scale / n).to(self.log_temperature.dtype)
        return value, (grad_sim, grad_log_t, (grad_bias / n).to(self.bias.dtype))
