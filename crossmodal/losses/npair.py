"""Multi-class N-pair loss (Sohn, NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, masked_logsumexp, mean_over
from crossmodal.losses.pairs import PairBatch


class NPairLoss(PairwiseLoss):
    """N-pair loss with the paper's embedding-norm regulariser.

    For an anchor ``i``, a positive ``p`` and the anchor's negatives ``N_i``, with
    ``f_i·f_j`` the inner product of the (by default raw, unnormalised) embeddings::

        ℓ_ip = log(1 + Σ_{n∈N_i} exp(s·f_i·f_n − s·f_i·f_p))

    The paper has one positive per anchor (its negatives are the other classes'
    positives); with several, ``ℓ_i`` is the mean of ``ℓ_ip`` over the anchor's positives.
    The loss is the mean of ``ℓ_i`` over anchors with at least one positive, plus
    ``reg_weight`` × the mean squared norm of the embeddings (queries, and references when
    ``ref_emb`` is given, each side weighted ½) — the paper's L2 regulariser that keeps
    the unnormalised embeddings from growing to shrink the loss.

    Args:
        scale: ``s`` multiplying the inner products (1 in the paper; useful > 1 when
            ``normalize=True`` bounds them to [-1, 1]).
        reg_weight: weight of the norm regulariser (default 0.002; 0 disables it).
        normalize: L2-normalise first (cosine). Default False, as in the paper.
    """

    def __init__(
        self,
        scale: float = 1.0,
        reg_weight: float = 0.002,
        normalize: bool = False,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if reg_weight < 0:
            raise ValueError(f"reg_weight must be >= 0, got {reg_weight}")
        self.scale = scale
        self.reg_weight = reg_weight

    def _rows(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        logits = self.scale * pairs.sim
        pos = pairs.pos
        neg_lse = masked_logsumexp(logits, pairs.neg)
        # softplus(-inf) = 0: an anchor without negatives has log(1 + 0) = 0 per positive.
        per_pair = torch.where(pos, F.softplus(neg_lse[:, None] - logits), 0.0)
        num_pos = pos.sum(1)
        return per_pair.sum(1) / num_pos.clamp_min(1), num_pos > 0

    def compute(self, pairs: PairBatch) -> Tensor:
        loss = mean_over(*self.rowwise(pairs, self._rows), pairs)
        if self.reg_weight:
            if pairs.self_ref:
                reg = pairs.query_sqnorm.mean()
            else:
                reg = 0.5 * (pairs.query_sqnorm.mean() + pairs.ref_sqnorm.mean())
            loss = loss + self.reg_weight * reg
        return loss
