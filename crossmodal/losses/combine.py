"""The weighted sum of loss terms (the training objective), and the default preset."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from crossmodal.losses.registry import create_loss

#: The default training objective's terms, each symmetric with weight 1: InfoNCE
#: (instance matching) and N-pair. A training preset, not a loss: ``{name: default}`` in
#: a training config expands to these terms, and :func:`default_objective` builds them.
DEFAULT_PRESET = ("info_nce", "npair")


class WeightedSum(nn.Module):
    """``Σ_t w_t · loss_t(embeddings, labels[k_t], ref_emb, ref_labels[k_t])``.

    Called like every loss: ``objective(embeddings, labels, ref_emb=None,
    ref_labels=None, *, miner_masks=None)``, every term with the same arguments. With
    ``keys`` each term matches on its own key: ``labels`` (and ``ref_labels``) are then
    mappings key → (N,) labels, e.g. ``{"track": ..., "label": ...}``, and term ``t``
    gets ``labels[keys[t]]``; without ``keys`` they are tensors given to every term.

    Args:
        losses: name → loss module (kept in an ``nn.ModuleDict`` so parameters register).
        weights: name → weight; missing names weigh 1.
        keys: name → the key of ``labels`` the term matches on (every name, or None).

    After each call ``last_terms`` maps every name to its unweighted value (detached),
    for logging (the trainer writes them under these names).
    """

    def __init__(
        self,
        losses: Mapping[str, nn.Module],
        weights: Mapping[str, float] | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        if not losses:
            raise ValueError("WeightedSum needs at least one loss")
        weights = dict(weights or {})
        unknown = set(weights) - set(losses)
        if unknown:
            raise ValueError(f"weights name losses that are not given: {sorted(unknown)}")
        if keys is not None and set(keys) != set(losses):
            raise ValueError(
                f"keys must name every loss: losses {sorted(losses)}, keys {sorted(keys)}"
            )
        # ``terms``: the name the trainer's checkpoints store the objective under.
        self.terms = nn.ModuleDict(dict(losses))
        self.weights = {name: float(weights.get(name, 1.0)) for name in losses}
        self.keys = None if keys is None else {name: keys[name] for name in losses}
        self.last_terms: dict[str, Tensor] = {}

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | Mapping[str, Tensor],
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | Mapping[str, Tensor] | None = None,
        *,
        miner_masks: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        keyed = isinstance(labels, Mapping)
        if keyed != (self.keys is not None):
            raise ValueError(
                "labels must be a mapping key → labels when the terms have keys, and a "
                f"tensor otherwise (keys: {self.keys})"
            )
        total: Tensor | None = None
        terms = {}
        for name, loss in self.terms.items():
            term_labels, term_ref_labels = labels, ref_labels
            if self.keys is not None:
                key = self.keys[name]
                term_labels = labels[key]  # type: ignore[index]
                term_ref_labels = None if ref_labels is None else ref_labels[key]  # type: ignore[index]
            value = loss(embeddings, term_labels, ref_emb, term_ref_labels, miner_masks=miner_masks)
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
    """The :data:`DEFAULT_PRESET` as one module: symmetric InfoNCE + symmetric N-pair.

    Called as ``objective(video_emb, labels, music_emb, labels)``; ``last_terms`` holds
    ``"info_nce"`` and ``"npair"``. The trainer's default configuration builds the same
    terms (``losses: [{name: info_nce}, {name: npair}]``).
    """
    return WeightedSum(
        {
            "info_nce": create_loss("info_nce", symmetric=True, temperature=temperature),
            "npair": create_loss(
                "npair", symmetric=True, scale=npair_scale, reg_weight=npair_reg_weight
            ),
        },
        {"info_nce": info_nce_weight, "npair": npair_weight},
    )
