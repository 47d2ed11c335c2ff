"""Shared plumbing of the pairwise losses: input checks, masks, blocks, reductions.

A pairwise loss subclasses :class:`PairwiseLoss` and writes only the math on one
:class:`~crossmodal.losses.pairs.PairBatch` (similarity matrix + boolean
positive/negative masks): ``block_forward`` (value over row blocks) and
``block_backward`` (its closed-form gradient), run by
:class:`~crossmodal.losses.blockwise.BlockwiseLoss`. Nothing here materialises index
tuples of pairs or triplets.
"""

from __future__ import annotations

from typing import Any

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
      :mod:`crossmodal.miners` miner, ANDed with the label masks. A ``miner`` given at
      construction is run on every call and ANDed as well.

    Embeddings are L2-normalised first unless ``normalize=False`` (similarity = cosine).
    Each subclass documents its reduction; when no anchor/pair has a valid term the loss
    is ``0`` still connected to the graph (its gradient is zero), so ``backward`` and DDP
    work. Bad input raises ``ValueError`` naming the problem (see
    :func:`crossmodal.losses.pairs.check_inputs`).

    Subclasses implement ``block_forward(pairs) -> (value, state)`` and
    ``block_backward(pairs, state, grad) -> gradients of grad_inputs(pairs)``, walking
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

    def blocks(self, pairs: PairBatch) -> list[PairBatch]:
        """Row blocks of about ``chunk_elements`` entries (one block when small)."""
        return pairs.split(block_rows(pairs, self.chunk_elements))

    def block_forward(self, pairs: PairBatch) -> tuple[Tensor, Any]:
        """(value, state for the backward pass), computed without autograd."""
        raise NotImplementedError

    def block_backward(self, pairs: PairBatch, state: Any, grad: Tensor) -> tuple:
        """Gradients of ``grad * value`` w.r.t. each of :meth:`grad_inputs`."""
        raise NotImplementedError
