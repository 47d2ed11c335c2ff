"""Debiased and hard-negative InfoNCE (Chuang et al., NeurIPS 2020; Robinson et al., ICLR 2021)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from crossmodal.losses.base import AutogradPairwiseLoss


class HardNegativeNCELoss(AutogradPairwiseLoss):
    """InfoNCE whose negative term is debiased (``τ⁺``) and hardness-weighted (``β``).

    For anchor ``i`` with logits ``z_ij = cos(q_i, r_j) / τ``, its ``N`` negatives
    ``N_i`` and a positive ``p``, Robinson et al.'s estimator (their eq. 4, with the
    importance weights of their code) replaces ``Σ_{j∈N_i} exp(z_ij)``::

        w_ij = N · exp(β z_ij) / Σ_{k∈N_i} exp(β z_ik)                 (mean 1 over N_i)
        Ng_ip = max( (Σ_{j∈N_i} w_ij exp(z_ij) − τ⁺ N exp(z_ip)) / (1 − τ⁺),  N e^{−1/τ} )
        ℓ_ip = −log( exp(z_ip) / (exp(z_ip) + Ng_ip) )

    ``β`` up-weights the negatives closest to the anchor (``β = 0``: uniform weights,
    Chuang et al.'s *debiased* contrastive loss); ``τ⁺`` is the assumed share of the
    anchor's class among the "negatives" (false negatives under unlabelled sampling),
    whose expected contribution is subtracted; the floor ``N e^{−1/τ}`` is the smallest
    the true sum can be for unit vectors. ``τ⁺ = 0, β = 0`` is plain InfoNCE with each
    positive scored against the negatives only.

    Several positives per anchor (same label) each give a term; ``ℓ_i`` is their mean and
    the loss the mean of ``ℓ_i`` over anchors with a positive (0, connected, when none
    has one). An anchor without negatives contributes 0. Defaults are the papers'
    (``τ = 0.5``, ``τ⁺ = 0.1``, ``β = 1``); the temperature is fixed.
    """

    def __init__(
        self,
        temperature: float = 0.5,
        tau_plus: float = 0.1,
        beta: float = 1.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= tau_plus < 1.0:
            raise ValueError(f"tau_plus must be in [0, 1), got {tau_plus}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.temperature, self.tau_plus, self.beta = temperature, tau_plus, beta

    def similarity_loss(self, sim: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        z = sim / self.temperature
        n_neg = neg.sum(1, keepdim=True).to(z.dtype)
        has_neg = n_neg > 0
        # log Σ_j w_ij e^{z_ij} = log N + LSE((β+1) z) − LSE(β z), over the negatives.
        # Rows without negatives get finite filler (their result is replaced below) so
        # that logsumexp's backward never sees an all −inf row (it would give NaN).
        filler = torch.where(has_neg, -math.inf, 0.0)
        weighted = torch.logsumexp(torch.where(neg, (self.beta + 1.0) * z, filler), 1, keepdim=True)
        weights = torch.logsumexp(torch.where(neg, self.beta * z, filler), 1, keepdim=True)
        log_n = n_neg.clamp_min(1).log()
        log_sum = torch.where(has_neg, log_n + weighted - weights, -math.inf)
        if self.tau_plus == 0:
            log_ng = log_sum.expand_as(z)
        else:
            # Σ w e^z − τ⁺ N e^{z_p}, for every (anchor, positive), under a shift that
            # keeps both exponentials ≤ 1; ≤ 0 leaves only the floor.
            log_bias = math.log(self.tau_plus) + log_n + z
            shift = torch.maximum(log_sum, log_bias)
            diff = (log_sum - shift).exp() - (log_bias - shift).exp()
            log_diff = shift + diff.clamp_min(torch.finfo(z.dtype).tiny).log()
            log_ng = torch.where(diff > 0, log_diff - math.log1p(-self.tau_plus), -math.inf)
        floor = torch.where(has_neg, log_n - 1.0 / self.temperature, -math.inf)
        log_ng = torch.maximum(log_ng, floor)
        per_pair = torch.logaddexp(z, log_ng) - z
        n_pos = pos.sum(1)
        per_anchor = (per_pair * pos).sum(1) / n_pos.clamp_min(1)
        valid = n_pos > 0
        return (per_anchor * valid).sum() / valid.sum().clamp_min(1)
