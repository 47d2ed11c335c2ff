"""Both retrieval directions of a cross-modal loss, averaged."""

from __future__ import annotations

from torch import Tensor, nn


class SymmetricLoss(nn.Module):
    """``½ (loss(a, la, b, lb) + reverse(b, lb, a, la))``, e.g. video→music and music→video.

    ``reverse`` defaults to ``loss`` itself (shared parameters such as InfoNCE's
    temperature or a proxy loss's class weights). Pass a separate ``reverse`` when a
    direction carries state of its own, e.g. one
    :class:`~crossmodal.sampling.memory.CrossBatchMemory` per modality:
    ``SymmetricLoss(CrossBatchMemory(loss, ...), CrossBatchMemory(loss, ...))``.
    Both modalities' embeddings and labels are required.
    """

    def __init__(self, loss: nn.Module, reverse: nn.Module | None = None) -> None:
        super().__init__()
        self.loss = loss
        self.reverse = reverse

    def forward(self, emb_a: Tensor, labels_a: Tensor, emb_b: Tensor, labels_b: Tensor) -> Tensor:
        reverse = self.loss if self.reverse is None else self.reverse
        forward_value = self.loss(emb_a, labels_a, emb_b, labels_b)
        return 0.5 * (forward_value + reverse(emb_b, labels_b, emb_a, labels_a))
