"""InfoNCE (NT-Xent / CLIP's contrastive loss) with a learnable temperature."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss, log_total, masked_exp, safe_div
from crossmodal.losses.pairs import PairBatch


class InfoNCELoss(BlockwiseLoss):
    """InfoNCE, one direction (queries → references), multi-positive.

    With logits ``z_ij = s · cos(q_i, r_j)`` and ``A_i = P_i ∪ N_i`` the anchor's positive
    and negative references, the anchor's loss is the average over its positives of the
    negative log-softmax over ``A_i``::

        ℓ_i = −1/|P_i| Σ_{p∈P_i} log( exp(z_ip) / Σ_{j∈A_i} exp(z_ij) )

    With one positive per anchor this is NT-Xent / CLIP's cross-entropy; with several
    (references sharing the query's label) it is SupCon's "L_out" form: the other
    positives stay in the denominator. The loss is the mean of ``ℓ_i`` over anchors with at
    least one positive; 0 (connected) when none has one.

    The logit scale ``s = exp(log_scale)`` starts at ``1 / temperature`` (default 0.07 →
    14.3) and is clamped to ``max_scale`` (100) in the forward pass, as in CLIP; when
    clamped it receives no gradient. ``learnable=False`` keeps it fixed at exactly
    ``min(1 / temperature, max_scale)`` (no parameter). Use
    :class:`~crossmodal.losses.SymmetricLoss` for both directions.
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learnable: bool = True,
        max_scale: float = 100.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if max_scale <= 0:
            raise ValueError(f"max_scale must be > 0, got {max_scale}")
        self.max_scale = max_scale
        self.learnable = learnable
        if learnable:
            self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        else:
            self.fixed_scale = min(1.0 / temperature, max_scale)

    @property
    def logit_scale(self) -> Tensor:
        """The logit scale in use, ``min(exp(log_scale), max_scale)`` (a 0-dim tensor,
        differentiable when learnable): the one owner of the temperature, which the
        trainer logs and stores."""
        if not self.learnable:
            return torch.tensor(self.fixed_scale, dtype=torch.float64)
        return self.log_scale.exp().clamp(max=self.max_scale)

    @property
    def temperature(self) -> float:
        """``1 / logit_scale`` as a float (for logging; reads the value on the host)."""
        return float(1.0 / self.logit_scale.detach())

    def grad_params(self) -> tuple[Tensor, ...]:
        return (self.log_scale,) if self.learnable else ()

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        # A tensor when learnable: multiplying by it reads nothing on the host.
        scale = self.logit_scale.detach() if self.learnable else self.fixed_scale
        # Every reference is a positive or a negative unless the diagonal (self case) or
        # a miner removed some: known from the call's structure, not from the masks.
        every_reference = not pairs.self_ref and not pairs.masks
        grad_sim = torch.zeros_like(pairs.sim) if with_grad else None
        grad_scale = pairs.sim.new_zeros(())
        total, n_valid = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for rows, block in self.blocks(pairs):
            logits = block.sim * scale
            pos = block.pos_f
            if every_reference:
                exps, norm, shift = masked_exp(logits, None)
            else:
                exps, norm, shift = masked_exp(
                    logits, pos + block.neg_f, block.pos_count + block.neg_count
                )
            valid = block.pos_count > 0
            inv_pos = 1.0 / block.pos_count.clamp_min(1.0)
            pos_mean = (logits * pos).sum(1, keepdim=True).mul_(inv_pos)
            loss = log_total(norm, shift) - pos_mean
            total += torch.where(valid, loss, 0.0).sum()
            n_valid += valid.sum()
            if with_grad:
                # dℓ_i/dz_ij = softmax over A_i − [j ∈ P_i] / |P_i|, for anchors with positives.
                grad_logits = safe_div(exps, norm).sub_(pos * inv_pos).mul_(valid)
                grad_scale += (grad_logits * block.sim).sum()
                torch.mul(grad_logits, scale, out=grad_sim[rows])
        # No anchor with a positive: total and every gradient are 0, divided by 1.
        n_valid = n_valid.clamp_min(1.0)
        value = total / n_valid
        if not with_grad:
            return value, ()
        grad_sim.div_(n_valid)
        if not self.learnable:
            return value, (grad_sim,)
        # d/d log_scale = d/d scale · scale, and 0 while the clamp is active.
        unclamped = self.log_scale.detach().exp() <= self.max_scale
        grad_log_scale = (grad_scale / n_valid) * scale * unclamped
        return value, (grad_sim, grad_log_scale.to(self.log_scale.dtype))


def learned_logit_scale(module: nn.Module) -> Tensor | None:
    """The logit scale of the first learnable :class:`InfoNCELoss` inside ``module``
    (e.g. a training objective), clamped as the loss uses it and detached; None when
    there is none."""
    for part in module.modules():
        if isinstance(part, InfoNCELoss) and part.learnable:
            return part.logit_scale.detach()
    return None
