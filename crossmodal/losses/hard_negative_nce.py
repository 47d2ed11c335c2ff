"""Debiased and hard-negative InfoNCE (Chuang et al., NeurIPS 2020; Robinson et al., ICLR 2021)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss, safe_div
from crossmodal.losses.pairs import PairBatch


class HardNegativeNCELoss(BlockwiseLoss):
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
    (``τ = 0.5``, ``τ⁺ = 0.1``, ``β = 1``); the temperature is fixed. Computed by row
    blocks with its closed-form gradient
    (:class:`~crossmodal.losses.blockwise.BlockwiseLoss`): the full-width work is the
    two log-sum-exps over the negatives, the rest runs on the positive slots.
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

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        tau, beta = self.temperature, self.beta
        grad_sim = torch.zeros_like(pairs.sim) if with_grad else None
        total, anchors = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for rows, block in self.blocks(pairs):
            n_neg = block.neg_count
            has_neg = n_neg > 0
            # One shift m (the row maximum over the negatives) serves both log-sum-exps,
            # since β ≥ 0: e = e^{z−m}, e_b = e^{β(z−m)}, e·e_b = e^{(β+1)(z−m)}; all 0 off
            # the negatives. log Σ w e^z = log N + log Σ e·e_b − log Σ e_b + m.
            # (Float-mask arithmetic: faster than torch.where on a bool mask on CPU.)
            masked = (block.neg_f - 1.0).mul_(torch.finfo(block.sim.dtype).max / 4)
            masked.add_(block.sim)
            top = torch.where(has_neg, masked.amax(dim=1, keepdim=True), 0.0)
            e = masked.sub_(top).div_(tau).exp_()
            if beta == 0:
                e_b, sum_b = None, n_neg
            elif beta == 1:
                e_b = e
            else:
                e_b = e.pow(beta)
            e_c = e * e_b if e_b is not None else e
            sum_c = e_c.sum(dim=1, keepdim=True)
            if e_b is not None:
                sum_b = e_b.sum(dim=1, keepdim=True)
            log_n = n_neg.clamp_min(1).log()
            log_sum = torch.where(has_neg, log_n + sum_c.log() - sum_b.log() + top / tau, -math.inf)
            # Each positive's term, on the positive slots (n, P).
            index, used = block.positive_slots()
            z = block.sim.gather(1, index) / tau
            if self.tau_plus == 0:
                log_ng = log_sum.expand_as(z)
                to_sum, to_z = None, None
            else:
                # Σ w e^z − τ⁺ N e^{z_p} under a shift that keeps both exponentials ≤ 1.
                log_bias = math.log(self.tau_plus) + log_n + z
                shift = torch.maximum(log_sum, log_bias)
                a, b = (log_sum - shift).exp(), (log_bias - shift).exp()
                diff = a - b
                live = diff > 0
                log_diff = shift + diff.clamp_min(torch.finfo(z.dtype).tiny).log()
                log_ng = torch.where(live, log_diff - math.log1p(-self.tau_plus), -math.inf)
                # d log_ng / d log_sum and d log_ng / d z_p where the estimate is positive.
                safe = torch.where(live, diff, 1.0)
                to_sum, to_z = torch.where(live, a / safe, 0.0), torch.where(live, -b / safe, 0.0)
            floor = torch.where(has_neg, log_n - 1.0 / tau, -math.inf)
            clamped = torch.maximum(log_ng, floor)
            per_pair = torch.logaddexp(z, clamped) - z
            n_pos = used.sum(1, keepdim=True, dtype=z.dtype)
            weight = used / n_pos.clamp_min(1)  # each term's share of the anchor's mean
            total += (per_pair * weight).sum()
            anchors += (n_pos > 0).sum()
            if not with_grad:
                continue
            # per_pair = softplus(Ng − z): d/dNg = σ(Ng − z), d/dz = −σ(Ng − z).
            slope = torch.sigmoid(clamped - z).mul_(weight)
            to_ng = slope * (log_ng > floor)  # the floor is a constant
            grad_z = -slope
            if to_sum is None:
                grad_log_sum = to_ng.sum(1, keepdim=True)
            else:
                grad_log_sum = (to_ng * to_sum).sum(1, keepdim=True)
                grad_z.addcmul_(to_ng, to_z)
            # d log_sum / d z_j = (β+1) e_c,j / Σ e_c − β e_b,j / Σ e_b on the negatives;
            # written straight into the gradient rows (1/τ: z = sim / τ).
            out = grad_sim[rows]
            coef_c = safe_div(grad_log_sum * (beta + 1.0) / tau, sum_c)
            torch.mul(e_c, coef_c, out=out)
            if e_b is not None:
                out.addcmul_(e_b, safe_div(grad_log_sum * -beta / tau, sum_b))
            out.scatter_add_(1, index, grad_z.div_(tau))
        anchors = anchors.clamp_min(1)
        value = total / anchors
        if not with_grad:
            return value, ()
        return value, (grad_sim.div_(anchors),)
