"""Shared plumbing of the pairwise losses: input checks, masks, row blocks, reductions.

A pairwise loss subclasses :class:`PairwiseLoss` and writes only ``compute(pairs)``, the
math on one :class:`~crossmodal.losses.pairs.PairBatch` (similarity matrix + boolean
positive/negative masks). Nothing here materialises index tuples of pairs or triplets.

Large matrices are processed in row blocks of about ``chunk_elements`` entries, each
under activation checkpointing: the block's temporaries are freed right after its
forward pass and recomputed during backward. Memory then stays O(N_q·N_r) for the
similarity matrix and its gradient plus O(block) for everything else, and the
temporaries stay small enough to be reused from the allocator's cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from crossmodal.losses.pairs import PairBatch, build_pairs


def masked_logsumexp(x: Tensor, mask: Tensor, dim: int = 1, add_one: bool = False) -> Tensor:
    """``log Σ_{j: mask} exp(x_j)`` along ``dim`` (``log(1 + Σ …)`` when ``add_one``).

    Rows with no True entry give ``-inf`` (or 0 with ``add_one``) and a zero gradient,
    where ``torch.logsumexp`` of ``-inf`` fills alone would give a NaN gradient.
    """
    empty = ~mask.any(dim=dim)
    if bool(empty.any()):
        # Keep such rows finite inside logsumexp; their result is replaced below.
        mask = mask | empty.unsqueeze(dim)
    out = torch.logsumexp(x.masked_fill(~mask, float("-inf")), dim=dim)
    out = out.masked_fill(empty, float("-inf"))
    return torch.logaddexp(out, torch.zeros_like(out)) if add_one else out


def mean_over(values: Tensor, valid: Tensor, pairs: PairBatch) -> Tensor:
    """Mean of ``values`` where ``valid``; :meth:`PairBatch.zero` when nothing is valid.

    ``values`` at invalid positions are ignored (they may be anything, even infinite).
    """
    count = valid.sum()
    if int(count) == 0:
        return pairs.zero()
    return torch.where(valid, values, 0.0).sum() / count


def ratio_or_zero(total: Tensor, count: Tensor, pairs: PairBatch) -> Tensor:
    """``total / count``, or :meth:`PairBatch.zero` when ``count`` is 0."""
    if int(count) == 0:
        return pairs.zero()
    return total / count


class PairwiseLoss(nn.Module):
    """Base of the losses computed from one similarity matrix and label masks.

    Call: ``loss(embeddings, labels, ref_emb=None, ref_labels=None, *, miner_masks=None)``
    → scalar tensor.

    * ``embeddings`` (N_q, D) are the queries (anchors), ``labels`` (N_q,) integer ids.
    * ``ref_emb`` (N_r, D) / ``ref_labels`` (N_r,): the reference set (e.g. the other
      modality). Pair (i, j) is positive when ``labels[i] == ref_labels[j]``, negative
      otherwise. Omitted: the batch against itself, the diagonal excluded from both.
    * ``miner_masks``: (pos_mask, neg_mask) bool (N_q, N_r), e.g. from a
      :mod:`crossmodal.miners` miner, ANDed with the label masks. A ``miner`` given at
      construction is run on every call and ANDed as well.

    Embeddings are L2-normalised first unless ``normalize=False`` (similarity = cosine).
    Each subclass documents its reduction; when no anchor/pair has a valid term the loss
    is ``0`` still connected to the graph (``sim.sum() * 0``), so ``backward`` and DDP work.
    Bad input raises ``ValueError`` naming the problem (see
    :func:`crossmodal.losses.pairs.check_inputs`).
    """

    #: Entries per row block above which the matrix is processed in checkpointed blocks.
    chunk_elements: int = 1 << 18
    #: Whether ``compute`` uses :meth:`PairBatch.distance` (norms are then shared by blocks).
    uses_distance: bool = False

    def __init__(self, normalize: bool = True, miner: nn.Module | None = None) -> None:
        super().__init__()
        self.normalize = normalize
        self.miner = miner

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        miner_masks: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        masks = [] if miner_masks is None else [miner_masks]
        if self.miner is not None:
            masks.append(self.miner(embeddings, labels, ref_emb, ref_labels))
        pairs = build_pairs(
            embeddings, labels, ref_emb, ref_labels, normalize=self.normalize, masks=masks
        )
        return self.compute(pairs)

    def compute(self, pairs: PairBatch) -> Tensor:
        """The loss value from ``pairs`` (subclasses implement the paper's math here)."""
        raise NotImplementedError

    def map_rows(self, pairs: PairBatch, fn: Callable[[PairBatch], Any]) -> list[Any]:
        """``fn`` on row blocks of ``pairs`` (one block when the matrix is small).

        ``fn`` must depend only on its block (and on tensors computed before this call):
        with several blocks each runs under activation checkpointing and is re-run in
        the backward pass.
        """
        n_rows, n_cols = pairs.sim.shape
        rows = max(1, self.chunk_elements // max(1, n_cols))
        if rows >= n_rows:
            return [fn(pairs)]
        return [
            checkpoint(lambda block=block: fn(block.fresh()), use_reentrant=False)
            for block in pairs.split(rows, with_norms=self.uses_distance)
        ]

    def rowwise(self, pairs: PairBatch, fn: Callable[[PairBatch], tuple[Tensor, ...]]):
        """:meth:`map_rows` for an ``fn`` returning per-row tensors; concatenated over blocks."""
        parts = self.map_rows(pairs, fn)
        if len(parts) == 1:
            return parts[0]
        return tuple(torch.cat(column) for column in zip(*parts, strict=True))
