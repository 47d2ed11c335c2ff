"""Additive-margin softmax (Wang, Cheng, Liu & Liu, IEEE SPL 2018)."""

from __future__ import annotations

from torch import Tensor

from crossmodal.losses.proxy_base import ProxyLoss, replace_target, target_of


class AMSoftmaxLoss(ProxyLoss):
    """AM-Softmax: ``logits_ij = s · (cos θ_ij − m·[j = y_i])``, cross-entropy.

    Embeddings and proxies are L2-normalised. ``m=0.35`` (the paper's); ``scale``
    defaults to 16, not the paper's 30: the face-recognition papers set it for
    10⁴–10⁵ identities; on unit vectors the scale a softmax needs grows only
    logarithmically with the class count (NormFace's bound,
    :func:`~crossmodal.losses.proxy_base.normface_scale`, is 16.1 for 10⁴ classes at
    p = 0.999), and it is the margin, not the scale, that keeps pulling classes tight.
    At 30 the loss is spent early (MAP@R 0.86 on digits vs 0.90 at 16;
    ``bench/results/loss_quality.md``). The same formula was published concurrently as
    CosFace (:class:`~crossmodal.losses.CosFaceLoss`).
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, margin: float = 0.35, scale: float = 16.0
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.margin = margin
        self.scale = scale

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        cos = self.cosine(embeddings)
        return self.scale * replace_target(cos, labels, target_of(cos, labels) - self.margin)
