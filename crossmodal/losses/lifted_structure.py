"""Lifted structured loss (Oh Song et al., CVPR 2016), on the similarity matrix."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss, masked_logsumexp, ratio_or_zero
from crossmodal.losses.pairs import PairBatch


class LiftedStructureLoss(PairwiseLoss):
    """Lifted structure loss: each positive pair against the negatives of both its ends.

    With Euclidean distances ``D`` of L2-normalised embeddings, for a positive pair
    (i, j)::

        J_ij = log( Σ_{k∈N(i)} exp(α − D_ik) + Σ_{l∈N(j)} exp(α − D_lj) ) + D_ij − β
        loss = 1/(2|P|) Σ_{(i,j)∈P} [J_ij]_+²

    ``α = neg_margin`` (1 in the paper), ``β = pos_margin`` (0 in the paper), ``P`` the
    positive (query, reference) pairs; each unordered pair of the batch-against-itself
    case appears twice in ``P``, which the ½ offsets, giving the paper's value. ``N(i)``
    are query i's negative references (row i) and ``N(j)`` the queries negative to
    reference j (column j): in the batch-against-itself case the matrix is symmetric and
    this is the paper's formula; across modalities it lifts both ends in their own roles.
    A positive pair with no negative at either end has no term and is left out of the
    mean; 0 (connected) when no pair has a term.
    """

    uses_distance = True

    def __init__(
        self,
        neg_margin: float = 1.0,
        pos_margin: float = 0.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        self.neg_margin = neg_margin
        self.pos_margin = pos_margin

    def _column_lse(self, pairs: PairBatch) -> Tensor:
        return masked_logsumexp(self.neg_margin - pairs.distance(), pairs.neg, dim=0)

    def _rows(self, pairs: PairBatch, col: Tensor) -> tuple[Tensor, Tensor]:
        dist = pairs.distance()
        row = masked_logsumexp(self.neg_margin - dist, pairs.neg, dim=1)
        # Empty sides are -inf; a finite stand-in keeps logaddexp's gradient finite.
        floor = torch.finfo(dist.dtype).min / 4
        row_has, col_has = torch.isfinite(row), torch.isfinite(col)
        row = torch.where(row_has, row, floor)
        col = torch.where(col_has, col, floor)
        j = torch.logaddexp(row[:, None], col[None, :]) + dist - self.pos_margin
        valid = pairs.pos & (row_has[:, None] | col_has[None, :])
        terms = torch.where(valid, j.clamp_min(0.0).pow(2) / 2, 0.0)
        return terms.sum(1), valid.sum(1)

    def compute(self, pairs: PairBatch) -> Tensor:
        # N(j) spans every query row: a first pass over the row blocks builds the column
        # log-sum-exps (with gradient), the second pass uses them.
        partial = self.map_rows(pairs, self._column_lse)
        col = partial[0] if len(partial) == 1 else _combine_lse(torch.stack(partial))
        total, count = self.rowwise(pairs, lambda block: self._rows(block, col))
        return ratio_or_zero(total.sum(), count.sum(), pairs)


def _combine_lse(parts: Tensor) -> Tensor:
    """Log-sum-exp over dim 0 of per-block log-sum-exps that may be -inf."""
    return masked_logsumexp(parts, torch.isfinite(parts), dim=0)
