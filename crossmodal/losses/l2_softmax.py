"""L2-constrained softmax (Ranjan, Castillo & Chellappa, 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.proxy_base import ProxyLoss


class L2SoftmaxLoss(ProxyLoss):
    """Softmax on features constrained to a hypersphere of radius ``alpha``.

    ``logits = alpha · x̂ Wᵀ + b`` where ``x̂`` is the L2-normalised embedding and ``W``
    (unnormalised) and ``b`` the classifier's weights and bias (``bias=True``), then
    cross-entropy. The paper derives a lower bound on ``alpha`` from the class count;
    default 16.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, alpha: float = 16.0, bias: bool = True
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        logits = self.alpha * F.normalize(embeddings, dim=1) @ self.proxies(embeddings.dtype).T
        if self.bias is not None:
            logits = logits + self.bias.to(embeddings.dtype)
        return logits
