"""Distance-weighted negative sampling (Wu, Manmatha, Smola & Krähenbühl, ICCV 2017)."""

from __future__ import annotations

import torch
from torch import Tensor

from crossmodal.losses.pairs import PairBatch
from crossmodal.sampling.miners.base import Miner


class DistanceWeightedMiner(Miner):
    """Sample negatives with probability ∝ ``1 / q(d)``, undoing the distance density.

    On the unit sphere in ``n`` dimensions pairwise distances have density
    ``q(d) ∝ d^{n−2} (1 − d²/4)^{(n−3)/2}``; sampling negatives with weight ``q(d)^{-1}``
    spreads them over all distances instead of the crowded ``d ≈ √2``. As in the paper,
    ``d`` is clipped below at ``cutoff`` (0.5) to bound the weights, and negatives at
    ``d ≥ nonzero_loss_cutoff`` (1.4) get weight 0 (they would not contribute to a margin
    loss). Each anchor keeps all its positives and draws as many negatives as it has
    positives (with replacement; duplicates collapse in the mask). Anchors without a
    positive or without an eligible negative keep nothing. Draws use ``generator`` (or
    torch's global generator).
    """

    def __init__(
        self,
        cutoff: float = 0.5,
        nonzero_loss_cutoff: float = 1.4,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0 < cutoff < nonzero_loss_cutoff <= 2:
            raise ValueError(
                "need 0 < cutoff < nonzero_loss_cutoff <= 2 (distances on the unit sphere), "
                f"got cutoff={cutoff}, nonzero_loss_cutoff={nonzero_loss_cutoff}"
            )
        self.cutoff = cutoff
        self.nonzero_loss_cutoff = nonzero_loss_cutoff
        self.generator = generator

    def log_weights(self, dist: Tensor, dim: int) -> Tensor:
        """``−log q(d)`` up to a constant, with ``d`` clipped at ``cutoff``."""
        d = dist.clamp_min(self.cutoff)
        return (2.0 - dim) * d.log() - ((dim - 3.0) / 2.0) * (1.0 - d.pow(2) / 4.0).clamp_min(
            1e-8
        ).log()

    def mine(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        dist = pairs.distance()
        eligible = pairs.neg & (dist < self.nonzero_loss_cutoff)
        num_pos = pairs.pos.sum(1)
        rows = torch.nonzero((num_pos > 0) & eligible.any(1)).squeeze(1)
        neg = torch.zeros_like(pairs.neg)
        if rows.numel() == 0:
            return neg, neg.clone()
        log_w = self.log_weights(dist[rows].double(), pairs.dim)
        log_w = log_w.masked_fill(~eligible[rows], float("-inf"))
        probs = torch.softmax(log_w, dim=1)
        draws = int(num_pos[rows].max())
        picked = torch.multinomial(probs, draws, replacement=True, generator=self.generator)
        used = torch.arange(draws, device=dist.device)[None, :] < num_pos[rows][:, None]
        # Rows draw the longest row's count; surplus draws repeat the row's first draw.
        picked = torch.where(used, picked, picked[:, :1])
        hits = torch.zeros(rows.numel(), dist.shape[1], dtype=torch.bool, device=dist.device)
        neg[rows] = hits.scatter_(1, picked, True)
        pos = pairs.pos & neg.any(1, keepdim=True)
        return pos, neg
