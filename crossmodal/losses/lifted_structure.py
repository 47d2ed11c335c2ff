"""Lifted structured loss (Oh Song et al., CVPR 2016), on the similarity matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import (
    BlockwiseLoss,
    distance_chain,
    log_total,
    safe_div,
)
from crossmodal.losses.pairs import PairBatch


class LiftedStructureLoss(BlockwiseLoss):
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

    def _exponent(self, block: PairBatch) -> Tensor:
        """α − D for one block (a fresh tensor)."""
        return self.neg_margin - block.distance()

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        blocks = self.blocks(pairs)
        grad_sim, grad_query, grad_ref = self.grad_buffers(pairs) if with_grad else (None,) * 3
        # N(j) spans every query row: a first pass builds the column log-sum-exps, and
        # from the same masked exponent each row's; the row exponentials wait in the
        # gradient buffer (where they end up, scaled) until the column sums are known.
        # (Float-mask arithmetic: faster than torch.where on a bool mask on CPU.)
        big = torch.finfo(pairs.sim.dtype).max / 4
        col = pairs.sim.new_full((1, pairs.sim.shape[1]), -math.inf)
        row_sums = []
        for rows, block in blocks:
            masked = (block.neg_f - 1.0).mul_(big).add_(self._exponent(block))
            shift = masked.amax(dim=0, keepdim=True)
            part = (masked - shift).exp_().sum(dim=0, keepdim=True).log_().add_(shift)
            col = torch.logaddexp(col, part.masked_fill_(shift < -big / 2, -math.inf))
            has = block.neg_count > 0
            shift = torch.where(has, masked.amax(dim=1, keepdim=True), 0.0)
            exps = (
                masked.sub_(shift)
                if grad_sim is None
                else torch.sub(masked, shift, out=grad_sim[rows])
            )
            norm = exps.exp_().sum(dim=1, keepdim=True)
            row_sums.append((norm, log_total(norm, shift)))
        # Empty sides are -inf; a very negative stand-in keeps logaddexp finite.
        floor = torch.finfo(col.dtype).min / 4
        col_has = torch.isfinite(col)
        col_f = torch.where(col_has, col, floor)
        grad_col = torch.zeros_like(col)
        total, count = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for (rows, block), (norm, row) in zip(blocks, row_sums, strict=True):
            row_has = torch.isfinite(row)
            row_f = torch.where(row_has, row, floor)
            # J only matters at the positives: evaluate it on each row's positive slots.
            index, used = block.positive_slots()
            slot_col = col_f[0, index]
            j = torch.logaddexp(row_f, slot_col) + block.distance().gather(1, index)
            valid = used & (row_has | col_has[0, index])
            slope = (j - self.pos_margin).clamp_min_(0.0).mul_(valid)  # d(½ J₊²)/dJ
            total += slope.pow(2).sum() / 2
            count += valid.sum()
            if with_grad:
                # J = logaddexp(R_i, C_j) + D_ij: the row part now, the column part once
                # dL/dC_j has been summed over all rows. The rows hold −dL/dD (the sign
                # distance_chain(negated=True) takes), which spares two negations.
                to_row = torch.sigmoid(row_f - slot_col)
                grad_col[0].scatter_add_(0, index.flatten(), (slope * (1.0 - to_row)).flatten())
                grad_row = (slope * to_row).sum(1, keepdim=True)
                grad_sim[rows].mul_(safe_div(grad_row, norm))
                grad_sim[rows].scatter_add_(1, index, slope.neg_())
        # No term: total and gradients are 0, divided by 1.
        count = count.clamp_min(1.0)
        value = total / count
        if not with_grad:
            return value, ()
        # exp(α − D − C_j) on the negatives: the column softmax.
        col_exponent = self.neg_margin - torch.where(col_has, col, 0.0)
        for rows, block in blocks:
            # Zero the exponent off the negatives first: there α − D − C_j is unbounded.
            exponent = torch.sub(col_exponent, block.distance()).mul_(block.neg_f)
            col_softmax = exponent.exp_().mul_(block.neg_f)
            grad_dist = grad_sim[rows].addcmul_(col_softmax, grad_col)
            grad_query[rows], ref_part = distance_chain(
                block, grad_dist, False, grad_dist, negated=True
            )
            grad_ref += ref_part
        for grad in (grad_sim, grad_query, grad_ref):
            grad.div_(count)
        return value, (grad_sim, grad_query, grad_ref)
