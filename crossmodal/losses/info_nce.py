"""InfoNCE (NT-Xent / CLIP's contrastive loss) with a learnable temperature."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import finite_or_zero, lse_rows
from crossmodal.losses.pairs import PairBatch


class InfoNCELoss(PairwiseLoss):
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
    def scale(self) -> Tensor:
        """The logit scale in use: ``min(exp(log_scale), max_scale)``."""
        if not self.learnable:
            return torch.tensor(self.fixed_scale, dtype=torch.float64)
        return self.log_scale.exp().clamp(max=self.max_scale)

    @property
    def temperature(self) -> float:
        """``1 / scale`` as a float (for logging)."""
        return float(1.0 / self.scale.detach())

    def grad_inputs(self, pairs: PairBatch) -> tuple[Tensor, ...]:
        return (pairs.sim, self.log_scale) if self.learnable else (pairs.sim,)

    def _scale_value(self) -> float:
        return float(self.scale.detach()) if self.learnable else self.fixed_scale

    def block_forward(self, pairs: PairBatch) -> tuple[Tensor, dict]:
        scale = self._scale_value()
        losses, log_norms, counts = [], [], []
        for block in self.blocks(pairs):
            logits = block.sim * scale
            pos = block.pos
            candidates = pos | block.neg
            if bool(candidates.all()):
                log_norm = torch.logsumexp(logits, dim=1)
            else:
                log_norm = lse_rows(logits, candidates)
            num_pos = pos.sum(1)
            pos_mean = torch.where(pos, logits, 0.0).sum(1) / num_pos.clamp_min(1)
            losses.append(log_norm - pos_mean)
            log_norms.append(finite_or_zero(log_norm))
            counts.append(num_pos)
        loss, num_pos = torch.cat(losses), torch.cat(counts)
        valid = num_pos > 0
        n_valid = int(valid.sum())
        value = torch.where(valid, loss, 0.0).sum() / max(n_valid, 1)
        return value, {"log_norm": torch.cat(log_norms), "num_pos": num_pos, "n_valid": n_valid}

    def block_backward(self, pairs: PairBatch, state: dict, grad: Tensor) -> tuple:
        scale = self._scale_value()
        grad_sim = torch.zeros_like(pairs.sim)
        grad_scale = pairs.sim.new_zeros(())
        if state["n_valid"]:
            # dℓ_i/dz_ij = softmax over A_i − [j ∈ P_i] / |P_i|, for anchors with positives.
            weight = (grad / state["n_valid"]) * (state["num_pos"] > 0)
            inv_pos = 1.0 / state["num_pos"].clamp_min(1).to(pairs.sim.dtype)
            start = 0
            for block in self.blocks(pairs):
                rows = slice(start, start + block.sim.shape[0])
                start = rows.stop
                logits = block.sim * scale
                pos = block.pos
                probs = (logits - state["log_norm"][rows, None]).exp_()
                candidates = pos | block.neg
                if not bool(candidates.all()):
                    probs.masked_fill_(~candidates, 0.0)
                grad_logits = torch.where(pos, probs - inv_pos[rows, None], probs)
                grad_logits.mul_(weight[rows, None])
                grad_scale += (grad_logits * block.sim).sum()
                torch.mul(grad_logits, scale, out=grad_sim[rows])
        if not self.learnable:
            return (grad_sim,)
        unclamped = bool(self.log_scale.detach().exp() <= self.max_scale)
        grad_log_scale = grad_scale * scale if unclamped else grad_scale * 0.0
        return grad_sim, grad_log_scale.to(self.log_scale.dtype)
