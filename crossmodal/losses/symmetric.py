"""Both retrieval directions of a cross-modal loss, averaged."""

from __future__ import annotations

from torch import Tensor, nn


class SymmetricLoss(nn.Module):
    """Both directions of a loss, averaged: video→music and music→video.

    Called like every loss, ``sym(embeddings, labels, ref_emb=None, ref_labels=None, *,
    miner_masks=None)``, with ``embeddings`` one modality and ``ref_emb`` the other::

        ½ (loss(embeddings, labels, ref_emb, ref_labels, miner_masks=(P, N))
           + reverse(ref_emb, ref_labels, embeddings, labels, miner_masks=(Pᵀ, Nᵀ)))

    ``miner_masks`` (N_q, N_r) are given in the first direction's orientation and
    transposed for the second. Without ``ref_emb`` there is one set of embeddings, so
    both directions are the batch against itself: the value is
    ``½ (loss(embeddings, labels) + reverse(embeddings, labels))``, which for a shared
    ``loss`` is just ``loss(embeddings, labels)`` (computed once).

    ``reverse`` defaults to ``loss`` itself (shared parameters such as InfoNCE's
    temperature or a proxy loss's class weights). Pass a separate ``reverse`` when a
    direction carries state of its own, e.g. one
    :class:`~crossmodal.sampling.memory.CrossBatchMemory` per modality (what
    ``create_loss(name, symmetric=True, memory_size=...)`` builds).
    """

    def __init__(self, loss: nn.Module, reverse: nn.Module | None = None) -> None:
        super().__init__()
        self.loss = loss
        self.reverse = reverse

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        miner_masks: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        forward_value = self.loss(embeddings, labels, ref_emb, ref_labels, miner_masks=miner_masks)
        if ref_emb is None and self.reverse is None:
            return forward_value
        reverse = self.loss if self.reverse is None else self.reverse
        if ref_emb is None or ref_labels is None:
            reverse_value = reverse(embeddings, labels, miner_masks=miner_masks)
        else:
            masks = None if miner_masks is None else (miner_masks[0].T, miner_masks[1].T)
            reverse_value = reverse(ref_emb, ref_labels, embeddings, labels, miner_masks=masks)
        return 0.5 * (forward_value + reverse_value)
