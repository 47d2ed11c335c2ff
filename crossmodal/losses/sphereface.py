"""SphereFace / A-Softmax (Liu et al., CVPR 2017)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossmodal.losses.large_margin_softmax import (
    annealed_target,
    check_margin,
    multiplicative_margin,
)
from crossmodal.losses.proxy_base import ProxyLoss, replace_target


class SphereFaceLoss(ProxyLoss):
    """A-Softmax: proxies normalised, ``logit_j = ‖x‖ cos θ_j``, target ``‖x‖ ψ(θ_y)``.

    ``ψ(θ) = (−1)^k cos(mθ) − 2k`` with integer margin ``m`` (default 4, the paper's).
    ``lambda_`` (default 0) anneals the target as ``(λ cos θ + ψ(θ)) / (1 + λ)``, the
    schedule the paper's training used; a trainer may lower it over time.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, margin: int = 4, lambda_: float = 0.0
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        self.margin = check_margin(margin)
        if lambda_ < 0:
            raise ValueError(f"lambda_ must be >= 0, got {lambda_}")
        self.lambda_ = lambda_

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        weight = F.normalize(self.proxies(embeddings.dtype), dim=1)
        scaled_cos = embeddings @ weight.T  # ‖x‖ cos θ_j
        norm = embeddings.norm(dim=1)
        cos_y = (F.normalize(embeddings, dim=1) * weight[labels]).sum(1)
        psi_y = multiplicative_margin(cos_y, self.margin)
        target = norm * annealed_target(cos_y, psi_y, self.lambda_)
        return replace_target(scaled_cos, labels, target)
