"""Smooth-AP (Brown, Xie, Kalogeiton & Zisserman, ECCV 2020): average precision, smoothed."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss
from crossmodal.losses.pairs import PairBatch


class SmoothAPLoss(BlockwiseLoss):
    """``1 − mAP`` of the batch, with the rank's step function replaced by a sigmoid.

    For query ``i`` with positives ``P`` and all its references ``Ω = P ∪ N``, let
    ``D_pj = s_ij − s_ip`` and ``G(x) = σ(x / τ)``. Its smoothed average precision is::

        AP_i = 1/|P| Σ_{p∈P} (1 + Σ_{j∈P, j≠p} G(D_pj)) / (1 + Σ_{j∈Ω, j≠p} G(D_pj))

    (the rank of ``p`` among the positives over its rank among all references), and the
    loss is ``1 − mean AP_i`` over queries with at least one positive (0, connected, when
    none has one). ``τ = 0.01`` is the paper's: small enough that ``G`` is close to the
    step function on cosines, large enough to give gradients.

    It optimises the retrieval metric itself, so it suits many positives per query (a
    track's clips). Only the positives are ranked, so the pair-of-pair differences are
    an (N_q, P, N_r) tensor, ``P`` the most references sharing one label (the positive
    slots of :meth:`~crossmodal.losses.pairs.PairBatch.positive_slots`): small in
    class-balanced batches, N_r when one label covers the batch. Computed by row blocks
    with its closed-form gradient (:class:`~crossmodal.losses.blockwise.BlockwiseLoss`),
    so that tensor exists one block of rows at a time.
    """

    #: Rows per block hold about this many entries of the matrix; the block's
    #: (n, P, N_r) tensor is P times that.
    chunk_elements = 1 << 16

    def __init__(
        self, temperature: float = 0.01, normalize: bool = True, miner: nn.Module | None = None
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        tau = self.temperature
        grad_sim = torch.zeros_like(pairs.sim) if with_grad else None
        total, queries = pairs.sim.new_zeros(()), pairs.sim.new_zeros(())
        for rows, block in self.blocks(pairs):
            index, used = block.positive_slots()  # (n, P): each row's positive columns
            ranked = block.sim.gather(1, index)
            # above[i, s, j] = G(s_ij − s_ip) for the positive p in slot s and negative j;
            # the other columns sit far below every similarity, where G is exactly 0 (no
            # mask pass on n×P×N_r).
            negatives = (block.neg_f - 1.0).mul_(torch.finfo(block.sim.dtype).max / 4)
            negatives.add_(block.sim)
            above = (negatives[:, None, :] - ranked[:, :, None]).div_(tau).sigmoid_()
            rank_neg = above.sum(2)
            # The other positives are the other used slots: a (n, P, P) tensor.
            others = used[:, None, :] & ~torch.eye(
                used.shape[1], dtype=torch.bool, device=used.device
            )
            above_pos = torch.sigmoid((ranked[:, None, :] - ranked[:, :, None]) / tau)
            above_pos = above_pos * others
            rank_in_pos = 1.0 + above_pos.sum(2)
            rank_in_all = rank_in_pos + rank_neg
            n_pos = used.sum(1, keepdim=True, dtype=ranked.dtype)
            weight = used / n_pos.clamp_min(1)  # each positive's share of the query's AP
            total += ((1.0 - (rank_in_pos / rank_in_all * weight).sum(1)) * (n_pos[:, 0] > 0)).sum()
            queries += (n_pos > 0).sum()
            if not with_grad:
                continue
            # loss −= weight · R⁺/R with R = R⁺ + R⁻: d/dR⁺ = −w R⁻/R², d/dR⁻ = w R⁺/R².
            # G' = G(1 − G), and 1/τ from the argument; R⁻ moves with its negatives (+)
            # and its own positive (−), R⁺ with the other positives (+) and its own (−).
            inv_sq = weight / rank_in_all.pow(2) / tau
            to_pos, to_neg = -rank_neg * inv_sq, rank_in_pos * inv_sq
            slope = above.addcmul_(above, above, value=-1.0)  # G' in place
            out = grad_sim[rows]
            torch.bmm(to_neg[:, None, :], slope, out=out[:, None, :])
            slope_pos = above_pos.addcmul_(above_pos, above_pos, value=-1.0)
            at_slots = torch.bmm(to_pos[:, None, :], slope_pos)[:, 0, :]
            at_slots -= to_neg * slope.sum(2) + to_pos * slope_pos.sum(2)
            out.scatter_add_(1, index, at_slots)
        queries = queries.clamp_min(1)
        value = total / queries
        if not with_grad:
            return value, ()
        return value, (grad_sim.div_(queries),)
