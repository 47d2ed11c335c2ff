"""InfoNCE (NT-Xent / CLIP's contrastive loss) with a learnable temperature."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, masked_logsumexp, mean_over
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
    ``min(1 / temperature, max_scale)`` (no parameter).
    Use :class:`~crossmodal.losses.SymmetricLoss` for both directions.
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

    def _rows(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        scale = self.scale.to(pairs.sim.dtype) if self.learnable else self.fixed_scale
        logits = scale * pairs.sim
        pos = pairs.pos
        candidates = pos | pairs.neg
        if bool(candidates.all()):
            log_norm = torch.logsumexp(logits, dim=1)
        else:
            log_norm = masked_logsumexp(logits, candidates)
        num_pos = pos.sum(1)
        pos_mean = torch.where(pos, logits, 0.0).sum(1) / num_pos.clamp_min(1)
        return log_norm - pos_mean, num_pos > 0

    def compute(self, pairs: PairBatch) -> Tensor:
        return mean_over(*self.rowwise(pairs, self._rows), pairs)
