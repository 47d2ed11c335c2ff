"""Smooth-AP (Brown, Xie, Kalogeiton & Zisserman, ECCV 2020): average precision, smoothed."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import AutogradPairwiseLoss


class SmoothAPLoss(AutogradPairwiseLoss):
    """``1 − mAP`` of the batch, with the rank's step function replaced by a sigmoid.

    For query ``i`` with positives ``P`` and all its references ``Ω = P ∪ N``, let
    ``D_pj = s_ij − s_ip`` and ``G(x) = σ(x / τ)``. Its smoothed average precision is::

        AP_i = 1/|P| Σ_{p∈P} (1 + Σ_{j∈P, j≠p} G(D_pj)) / (1 + Σ_{j∈Ω, j≠p} G(D_pj))

    (the rank of ``p`` among the positives over its rank among all references), and the
    loss is ``1 − mean AP_i`` over queries with at least one positive (0, connected, when
    none has one). ``τ = 0.01`` is the paper's: small enough that ``G`` is close to the
    step function on cosines, large enough to give gradients.

    It optimises the retrieval metric itself, so it suits many positives per query (a
    track's clips). Cost: an (N_q, N_r, N_r) tensor of pair-of-pair differences kept for
    the backward pass, about 0.5 GiB at N_q = N_r = 256 in float32 (the other losses keep
    N_q × N_r).
    """

    def __init__(
        self, temperature: float = 0.01, normalize: bool = True, miner: nn.Module | None = None
    ) -> None:
        super().__init__(normalize=normalize, miner=miner)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def similarity_loss(self, sim: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        # above[i, p, j] = G(s_ij − s_ip): how much reference j ranks above p for query i.
        above = torch.sigmoid((sim[:, None, :] - sim[:, :, None]) / self.temperature)
        others = ~torch.eye(sim.shape[1], dtype=torch.bool, device=sim.device)
        rank_in_pos = 1.0 + (above * (pos[:, None, :] & others)).sum(2)
        rank_in_all = rank_in_pos + (above * neg[:, None, :]).sum(2)
        n_pos = pos.sum(1)
        ap = (rank_in_pos / rank_in_all * pos).sum(1) / n_pos.clamp_min(1)
        valid = n_pos > 0
        return ((1.0 - ap) * valid).sum() / valid.sum().clamp_min(1)
