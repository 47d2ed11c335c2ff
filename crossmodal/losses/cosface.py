"""CosFace / large margin cosine loss (Wang et al., CVPR 2018)."""

from __future__ import annotations

from crossmodal.losses.am_softmax import AMSoftmaxLoss


class CosFaceLoss(AMSoftmaxLoss):
    """CosFace: ``logits_ij = s · (cos θ_ij − m·[j = y_i])``, cross-entropy.

    The formula of :class:`~crossmodal.losses.AMSoftmaxLoss`, with the same defaults
    ``m=0.35`` (the paper's) and ``s=16`` (the paper's is 64: see AMSoftmaxLoss).
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, margin: float = 0.35, scale: float = 16.0
    ) -> None:
        super().__init__(num_classes, embedding_dim, margin=margin, scale=scale)
