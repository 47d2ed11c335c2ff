"""SigLIP's sigmoid pairwise loss (Zhai, Mustafa, Kolesnikov & Beyer, ICCV 2023)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import AutogradPairwiseLoss


class SigLIPLoss(AutogradPairwiseLoss):
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
    which for the same pairs gives the same value.
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

    def similarity_loss(self, sim: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        logits = self.logit_scale.to(sim.dtype) * sim + self.bias.to(sim.dtype)
        # −log σ(z x) = softplus(−z x), stable for large |x|; one softplus for both signs.
        terms = F.softplus(torch.where(pos, -logits, logits))
        return (terms * (pos | neg)).sum() / sim.shape[0]
