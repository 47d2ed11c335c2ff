"""Smooth-AP (Brown, Xie, Kalogeiton & Zisserman, ECCV 2020): average precision, smoothed."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.pairs import PairBatch


class SmoothAPLoss(PairwiseLoss):
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
    class-balanced batches, N_r when one label covers the batch.
    """

    def __init__(
        self, temperature: float = 0.01, normalize: bool = True, miner: nn.Module | None = None
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def compute(self, pairs: PairBatch) -> Tensor:
        sim, pos, neg = pairs.sim, pairs.pos, pairs.neg
        index, used = pairs.positive_slots()  # (N_q, P): each row's positive columns
        ranked = sim.gather(1, index)
        # above[i, s, j] = G(s_ij − s_ip) for the positive p in slot s: how much
        # reference j ranks above p for query i.
        above = torch.sigmoid((sim[:, None, :] - ranked[:, :, None]) / self.temperature)
        columns = torch.arange(sim.shape[1], device=sim.device)
        other_pos = pos[:, None, :] & (columns[None, None, :] != index[:, :, None])
        rank_in_pos = 1.0 + (above * other_pos).sum(2)
        rank_in_all = rank_in_pos + (above * neg[:, None, :]).sum(2)
        n_pos = used.sum(1)
        ap = (rank_in_pos / rank_in_all * used).sum(1) / n_pos.clamp_min(1)
        valid = n_pos > 0
        return ((1.0 - ap) * valid).sum() / valid.sum().clamp_min(1)
