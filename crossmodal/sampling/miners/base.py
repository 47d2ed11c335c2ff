"""Shared plumbing of the miners: no gradients, the same matrix and masks as the losses."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.pairs import PairBatch, build_pairs


class Miner(nn.Module):
    """Base of the pair/triplet miners.

    Call: ``miner(embeddings, labels, ref_emb=None, ref_labels=None)`` →
    ``(pos_mask, neg_mask)``, bool tensors of shape (N_q, N_r) that a pairwise loss takes
    as ``miner_masks`` (or give the miner to the loss: ``ContrastiveLoss(miner=...)``).
    Runs under ``torch.no_grad()`` on detached inputs, with the same similarity matrix and
    label masks as the losses (cosine of L2-normalised embeddings; the diagonal excluded
    when ``ref_emb`` is omitted). The result is always a subset of the label masks, so a
    miner can narrow the pairs a loss sees but never relabel them. Subclasses write
    ``mine(pairs)``.
    """

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            pairs = build_pairs(
                embeddings.detach(),
                labels,
                None if ref_emb is None else ref_emb.detach(),
                ref_labels,
            )
            pos, neg = self.mine(pairs)
        for name, mask in (("pos_mask", pos), ("neg_mask", neg)):
            if mask.dtype != torch.bool or mask.shape != pairs.sim.shape:
                raise RuntimeError(
                    f"{type(self).__name__}.mine returned {name} {mask.dtype} "
                    f"{tuple(mask.shape)}; expected bool {tuple(pairs.sim.shape)}"
                )
        return pos & pairs.pos, neg & pairs.neg

    def mine(self, pairs: PairBatch) -> tuple[Tensor, Tensor]:
        """(pos_mask, neg_mask) selected from ``pairs`` (called without gradients)."""
        raise NotImplementedError


def one_hot_rows(index: Tensor, keep: Tensor, columns: int) -> Tensor:
    """(N, columns) bool with True at ``(i, index[i])`` for rows where ``keep[i]``."""
    mask = torch.zeros(index.shape[0], columns, dtype=torch.bool, device=index.device)
    mask[torch.arange(index.shape[0], device=index.device), index] = True
    return mask & keep[:, None]
