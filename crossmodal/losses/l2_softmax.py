"""L2-constrained softmax (Ranjan, Castillo & Chellappa, 2017)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.proxy_base import ProxyLoss


def l2_softmax_alpha(num_classes: int, probability: float = 0.9) -> float:
    """Ranjan et al.'s lower bound ``ln(p (C − 2) / (1 − p))`` (C − 2 floored at 1, where
    the paper's formula has no value)."""
    return math.log(probability * max(num_classes - 2, 1) / (1.0 - probability))


class L2SoftmaxLoss(ProxyLoss):
    """Softmax on features constrained to a hypersphere of radius ``alpha``.

    ``logits = alpha · x̂ Wᵀ + b`` where ``x̂`` is the L2-normalised embedding and ``W``
    (unnormalised) and ``b`` the classifier's weights and bias (``bias=True``), then
    cross-entropy. ``alpha`` defaults to the paper's lower bound for the class count,
    ``α_low = ln(p (C − 2) / (1 − p))`` at ``p = 0.9`` (4.3 for 10 classes, 9.1 for
    1,000), instead of a fixed 16: as for NormFace, a scale well above the bound lets
    the loss be spent while classes are still loose (MAP@R 0.71 on digits at 16, 0.92
    at the bound; ``bench/results/loss_quality.md``). ``p`` is lower than NormFace's
    0.99 because the weights here are not normalised: their norm (≈ 1.3 at init, and
    learned) multiplies ``alpha``, so the effective starting scale is about NormFace's.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, alpha: float | None = None, bias: bool = True
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        if alpha is None:
            alpha = l2_softmax_alpha(num_classes)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        logits = self.alpha * F.normalize(embeddings, dim=1) @ self.proxies(embeddings.dtype).T
        if self.bias is not None:
            logits = logits + self.bias.to(embeddings.dtype)
        return logits
