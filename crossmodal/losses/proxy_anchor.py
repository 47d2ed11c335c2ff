"""Proxy-Anchor loss (Kim, Kim, Cho & Kwak, CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from crossmodal.losses.proxy_base import ProxyLoss


class ProxyAnchorLoss(ProxyLoss):
    """Each class proxy is an anchor, against all the batch's embeddings at once::

        ℓ = 1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} exp(−α (s(x, p) − δ)))
          + 1/|P|  Σ_{p∈P}  log(1 + Σ_{x∈X_p⁻} exp( α (s(x, p) + δ)))

    ``s`` the cosine, ``P`` all proxies, ``P⁺`` those with a positive in the batch,
    ``X_p⁺``/``X_p⁻`` the batch's embeddings of / not of class ``p``. Unlike the
    softmax proxy losses it is not a per-embedding cross-entropy: the log-sum-exp runs
    over the batch, so each embedding's gradient depends on how hard it is relative to the
    others (the data-to-data relations pairwise losses see). ``α = 32, δ = 0.1``, the
    paper's. The paper also trains the proxies with a 100× larger learning rate; give
    ``loss.parameters()`` their own optimizer group for that.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, alpha: float = 32.0, delta: float = 0.1
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha, self.delta = alpha, delta

    def objective(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        cos = self.cosine(embeddings)
        member = F.one_hot(labels, self.num_classes).bool()
        pos = torch.where(member, -self.alpha * (cos - self.delta), -torch.inf)
        neg = torch.where(member, -torch.inf, self.alpha * (cos + self.delta))
        # log(1 + Σ exp(x)) as a log-sum-exp with a zero row: stable, and 0 for no members.
        zero = cos.new_zeros(1, self.num_classes)
        pos_terms = torch.logsumexp(torch.cat([zero, pos]), dim=0)
        neg_terms = torch.logsumexp(torch.cat([zero, neg]), dim=0)
        present = member.any(0)
        return (pos_terms * present).sum() / present.sum() + neg_terms.mean()
