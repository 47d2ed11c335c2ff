"""NormFace (Wang et al., ACM MM 2017): softmax on scaled cosines."""

from __future__ import annotations

from torch import Tensor

from crossmodal.losses.proxy_base import ProxyLoss, normface_scale


class NormFaceLoss(ProxyLoss):
    """Normalised softmax: ``logits_ij = s · cos(x_i, w_j)``, cross-entropy.

    Both embeddings and proxies are L2-normalised. ``scale`` ``s`` defaults to the
    paper's own lower bound for the class count
    (:func:`~crossmodal.losses.proxy_base.normface_scale` at ``p = 0.99``: 6.1 for 10
    classes, 11.5 for 1,000), not the fixed 20 of pytorch-metric-learning
    (temperature 0.05): without a margin the scale alone decides how tight the classes
    are pulled, and at 20 the loss is spent while they are still loose (MAP@R 0.72 on
    digits against 0.93 at the bound; ``bench/results/loss_quality.md``). The price is
    transfer to classes never trained on, which a large scale keeps better
    (docs/losses.md, "Defaults").
    """

    def __init__(self, num_classes: int, embedding_dim: int, scale: float | None = None) -> None:
        super().__init__(num_classes, embedding_dim)
        if scale is None:
            scale = normface_scale(num_classes)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = scale

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        # The scale goes on the (C, D) proxies rather than the (N, C) logits: one pass
        # over the smaller operand, forward and backward.
        return self.cosine(embeddings, scale=self.scale)
