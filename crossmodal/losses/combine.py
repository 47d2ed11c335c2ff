"""Weighted sums of losses, and the default cross-modal training objective."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from crossmodal.losses.info_nce import InfoNCELoss
from crossmodal.losses.npair import NPairLoss
from crossmodal.losses.symmetric import SymmetricLoss


class WeightedSum(nn.Module):
    """``Σ_k w_k · loss_k(*args, **kwargs)`` over named losses sharing one call signature.

    Args:
        losses: name → loss module (kept in an ``nn.ModuleDict`` so parameters register).
        weights: name → weight; missing names weigh 1.

    After each call ``last_terms`` maps every name to its unweighted value (detached),
    for logging.
    """

    def __init__(
        self, losses: Mapping[str, nn.Module], weights: Mapping[str, float] | None = None
    ) -> None:
        super().__init__()
        if not losses:
            raise ValueError("WeightedSum needs at least one loss")
        weights = dict(weights or {})
        unknown = set(weights) - set(losses)
        if unknown:
            raise ValueError(f"weights name losses that are not given: {sorted(unknown)}")
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = {name: float(weights.get(name, 1.0)) for name in losses}
        self.last_terms: dict[str, Tensor] = {}

    def forward(self, *args: Tensor, **kwargs: Tensor) -> Tensor:
        total: Tensor | None = None
        terms = {}
        for name, loss in self.losses.items():
            value = loss(*args, **kwargs)
            terms[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        self.last_terms = terms
        return total  # type: ignore[return-value]


def default_objective(
    info_nce_weight: float = 1.0,
    npair_weight: float = 1.0,
    temperature: float = 0.07,
    npair_scale: float = 1.0,
    npair_reg_weight: float = 0.002,
) -> WeightedSum:
    """Symmetric InfoNCE + symmetric N-pair: the default cross-modal training objective.

    Called as ``objective(video_emb, labels, music_emb, labels)``; ``last_terms`` holds
    ``"info_nce"`` and ``"npair"``.
    """
    return WeightedSum(
        {
            "info_nce": SymmetricLoss(InfoNCELoss(temperature=temperature)),
            "npair": SymmetricLoss(NPairLoss(scale=npair_scale, reg_weight=npair_reg_weight)),
        },
        {"info_nce": info_nce_weight, "npair": npair_weight},
    )
