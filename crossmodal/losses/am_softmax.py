"""Additive-margin softmax (Wang, Cheng, Liu & Liu, IEEE SPL 2018)."""

from __future__ import annotations

from torch import Tensor

from crossmodal.losses.proxy_base import ProxyLoss, replace_target, target_of


class AMSoftmaxLoss(ProxyLoss):
    """AM-Softmax: ``logits_ij = s · (cos θ_ij − m·[j = y_i])``, cross-entropy.

    Embeddings and proxies are L2-normalised. Defaults ``s=30, m=0.35`` (the paper's).
    The same formula was published concurrently as CosFace
    (:class:`~crossmodal.losses.CosFaceLoss`, whose paper uses ``s=64``).
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, margin: float = 0.35, scale: float = 30.0
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.margin = margin
        self.scale = scale

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        cos = self.cosine(embeddings)
        return self.scale * replace_target(cos, labels, target_of(cos, labels) - self.margin)
