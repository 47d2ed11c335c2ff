"""Circle loss, class-proxy form (Sun et al., CVPR 2020)."""

from __future__ import annotations

from torch import Tensor

from crossmodal.losses.proxy_base import ProxyLoss, replace_target, target_of


class ProxyCircleLoss(ProxyLoss):
    """Circle loss with class-level labels: one positive (the own proxy), C−1 negatives.

    With ``s_p = cos(x, w_y)`` and ``s_n^j = cos(x, w_j)``, ``j ≠ y``::

        ℓ = log(1 + Σ_j exp(γ α_n^j (s_n^j − Δ_n)) · exp(−γ α_p (s_p − Δ_p)))

    ``α_p = [1 + m − s_p]_+``, ``α_n = [s_n + m]_+`` (constants, no gradient),
    ``Δ_p = 1 − m``, ``Δ_n = m``. This equals the cross-entropy of the logits
    ``γ α_p (s_p − Δ_p)`` at the target and ``γ α_n (s_n − Δ_n)`` elsewhere, which is how
    it is computed. Defaults ``m=0.25`` (the paper's) and ``γ=64`` (the paper's 256 was
    set for 10⁵ face identities): near convergence ``α → m``, so ``γ α → 16``, the scale
    of the margin softmax losses (see :class:`~crossmodal.losses.AMSoftmaxLoss`); at 256
    the loss is spent while classes are still loose (MAP@R 0.89 on digits vs 0.92 at 64;
    ``bench/results/loss_quality.md``). Mean over the batch.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, m: float = 0.25, gamma: float = 64.0
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.m = m
        self.gamma = gamma

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        cos = self.cosine(embeddings)
        fixed = cos.detach()
        neg_logits = self.gamma * (fixed + self.m).clamp_min(0.0) * (cos - self.m)
        cos_y = target_of(cos, labels)
        alpha_p = (1.0 + self.m - cos_y.detach()).clamp_min(0.0)
        pos_logit = self.gamma * alpha_p * (cos_y - (1.0 - self.m))
        return replace_target(neg_logits, labels, pos_logit)
