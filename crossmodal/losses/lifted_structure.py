"""Lifted structured loss (Oh Song et al., CVPR 2016), on the similarity matrix."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.blockwise import distance_backward, lse_rows
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

    def _pair_terms(self, block: PairBatch, row: Tensor, col: Tensor):
        """(J, valid, neg exponent α − D, row/col stand-ins) for one block."""
        dist = block.distance()
        exponent = self.neg_margin - dist
        # Empty sides are -inf; a very negative stand-in keeps logaddexp finite.
        floor = torch.finfo(dist.dtype).min / 4
        row_f = torch.where(torch.isfinite(row), row, floor)
        col_f = torch.where(torch.isfinite(col), col, floor)
        j = torch.logaddexp(row_f[:, None], col_f[None, :]) + dist - self.pos_margin
        valid = block.pos & (torch.isfinite(row)[:, None] | torch.isfinite(col)[None, :])
        return j, valid, exponent, row_f, col_f

    def block_forward(self, pairs: PairBatch) -> tuple[Tensor, dict]:
        blocks = self.blocks(pairs)
        # N(j) spans every query row: a first pass builds the column log-sum-exps.
        col = pairs.sim.new_full((pairs.sim.shape[1],), float("-inf"))
        for block in blocks:
            exponent = (self.neg_margin - block.distance()).masked_fill_(~block.neg, float("-inf"))
            col = torch.logaddexp(col, torch.logsumexp(exponent, dim=0))
        rows, total, count = [], pairs.sim.new_zeros(()), 0
        for block in blocks:
            row = lse_rows(self.neg_margin - block.distance(), block.neg)
            j, valid, _, _, _ = self._pair_terms(block, row, col)
            total += torch.where(valid, j.clamp_min(0.0).pow(2), 0.0).sum() / 2
            count += int(valid.sum())
            rows.append(row)
        value = total / count if count else total * 0.0
        return value, {"row": torch.cat(rows), "col": col, "count": count}

    def block_backward(self, pairs: PairBatch, state: dict, grad: Tensor) -> tuple:
        weight = grad / state["count"] if state["count"] else grad * 0.0
        row_all, col = state["row"], state["col"]
        blocks = self.blocks(pairs)
        grad_dist = torch.empty_like(pairs.sim)
        grad_col = torch.zeros_like(col)
        # Pass 1: dJ terms through D_ij and the row sums; collect dL/dC_j over all rows.
        start = 0
        for block in blocks:
            rows = slice(start, start + block.sim.shape[0])
            start = rows.stop
            row = row_all[rows]
            j, valid, exponent, row_f, col_f = self._pair_terms(block, row, col)
            slope = torch.where(valid, j.clamp_min(0.0), 0.0).mul_(weight)  # d(½J₊²)/dJ
            to_row = torch.sigmoid(row_f[:, None] - col_f[None, :])  # dlogaddexp/dR
            grad_row = (slope * to_row).sum(1)
            grad_col += (slope * (1.0 - to_row)).sum(0)
            row_softmax = torch.where(block.neg, (exponent - row_f[:, None]).exp_(), 0.0)
            grad_dist[rows] = slope - row_softmax.mul_(grad_row[:, None])
        # Pass 2: the column sums' share, then through the distances.
        grad_sim = grad_dist
        grad_query = torch.empty_like(pairs.query_sqnorm)
        grad_ref = torch.zeros_like(pairs.ref_sqnorm)
        col_f = torch.where(torch.isfinite(col), col, 0.0)
        start = 0
        for block in blocks:
            rows = slice(start, start + block.sim.shape[0])
            start = rows.stop
            exponent = self.neg_margin - block.distance()
            col_softmax = torch.where(block.neg, (exponent - col_f[None, :]).exp_(), 0.0)
            block_grad = grad_dist[rows] - col_softmax.mul_(grad_col[None, :])
            grad_sim[rows], grad_query[rows], ref_part = distance_backward(block, block_grad, False)
            grad_ref += ref_part
        return grad_sim, grad_query, grad_ref
