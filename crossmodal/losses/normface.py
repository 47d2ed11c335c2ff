"""NormFace (Wang et al., ACM MM 2017): softmax on scaled cosines."""

from __future__ import annotations

from torch import Tensor

from crossmodal.losses.proxy_base import ProxyLoss


class NormFaceLoss(ProxyLoss):
    """Normalised softmax: ``logits_ij = s · cos(x_i, w_j)``, cross-entropy.

    Both embeddings and proxies are L2-normalised. ``scale`` ``s`` defaults to 20
    (pytorch-metric-learning's ``NormalizedSoftmaxLoss`` uses temperature 0.05 = 1/20).
    """

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 20.0) -> None:
        super().__init__(num_classes, embedding_dim)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = scale

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self.scale * self.cosine(embeddings)
