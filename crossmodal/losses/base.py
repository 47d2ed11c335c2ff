"""Shared plumbing of the pairwise losses: input checks, masks, blocks, reductions.

A pairwise loss subclasses :class:`PairwiseLoss` and writes only the math on one
:class:`~crossmodal.losses.pairs.PairBatch` (similarity matrix + boolean
positive/negative masks): ``evaluate`` returns the value over row blocks and its
closed-form gradient, run as one autograd node by
:class:`~crossmodal.losses.blockwise.BlockwiseLoss`. Nothing here materialises index
tuples of pairs or triplets.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.blockwise import BlockwiseLoss, block_rows
from crossmodal.losses.pairs import PairBatch, build_pairs


class PairwiseLoss(nn.Module):
    """Base of the losses computed from one similarity matrix and label masks.

    Call: ``loss(embeddings, labels, ref_emb=None, ref_labels=None, *, miner_masks=None)``
    → scalar tensor.

    * ``embeddings`` (N_q, D) are the queries (anchors), ``labels`` (N_q,) integer ids.
    * ``ref_emb`` (N_r, D) / ``ref_labels`` (N_r,): the reference set (e.g. the other
      modality). Pair (i, j) is positive when ``labels[i] == ref_labels[j]``, negative
      otherwise. Omitted: the batch against itself, the diagonal excluded from both.
    * ``miner_masks``: (pos_mask, neg_mask) bool (N_q, N_r), e.g. from a
      :mod:`crossmodal.sampling.miners` miner, ANDed with the label masks. A ``miner`` given at
      construction is run on every call and ANDed as well.

    Embeddings are L2-normalised first unless ``normalize=False`` (similarity = cosine).
    Each subclass documents its reduction; when no anchor/pair has a valid term the loss
    is ``0`` still connected to the graph (its gradient is zero), so ``backward`` and DDP
    work. Bad input raises ``ValueError`` naming the problem (see
    :func:`crossmodal.losses.pairs.check_inputs`).

    Subclasses implement ``evaluate(pairs, with_grad) -> (value, gradients)``, walking
    the matrix in row blocks of about ``chunk_elements`` entries (:meth:`blocks`).
    """

    #: Entries per row block (temporaries are block-sized).
    chunk_elements: int = 1 << 18
    #: Whether the loss works on Euclidean distances (its gradient then reaches the norms).
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
        """The loss value from ``pairs``, differentiable through :meth:`grad_inputs`."""
        return BlockwiseLoss.apply(self, pairs, *self.grad_inputs(pairs))

    def grad_inputs(self, pairs: PairBatch) -> tuple[Tensor, ...]:
        """Tensors the value is differentiated with respect to (one gradient each)."""
        if self.uses_distance:
            return pairs.sim, pairs.query_sqnorm, pairs.ref_sqnorm
        return (pairs.sim,)

    def blocks(self, pairs: PairBatch) -> list[tuple[slice, PairBatch]]:
        """Row blocks of about ``chunk_elements`` entries (one block when small), each
        with the slice of ``pairs``' rows it covers (where its gradient rows go)."""
        blocks, start = [], 0
        for block in pairs.split(block_rows(pairs, self.chunk_elements)):
            blocks.append((slice(start, start + block.sim.shape[0]), block))
            start += block.sim.shape[0]
        return blocks

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        """The value and, if ``with_grad``, ``d value / d x`` for each of :meth:`grad_inputs`
        (else an empty tuple). Runs without autograd."""
        raise NotImplementedError

    def grad_buffers(self, pairs: PairBatch) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Zeroed gradient buffers for the similarities and (distance losses) the norms."""
        grad_sim = torch.zeros_like(pairs.sim)
        if not self.uses_distance:
            return grad_sim, None, None
        return grad_sim, torch.zeros_like(pairs.query_sqnorm), torch.zeros_like(pairs.ref_sqnorm)
