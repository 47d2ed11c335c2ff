"""The training objective: a weighted sum of loss terms, each matching on its own key."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from torch import Tensor, nn

from crossmodal.errors import CrossmodalError
from crossmodal.training.config import TrainConfig

KEYS = ("track", "label")


class Objective(nn.Module):
    """``Σ_t w_t · loss_t(video_emb, keys[k_t], music_emb, keys[k_t])``.

    ``terms``: name → loss module called as ``loss(video_emb, keys, music_emb, keys)``
    (a :class:`~crossmodal.losses.SymmetricLoss` for both directions); ``weights``:
    name → w_t; ``keys``: name → ``"track"`` or ``"label"``, the key whose equality makes
    a positive pair for that term. Called as ``objective(video_emb, music_emb,
    {"track": (B,), "label": (B,)})``. After each call ``last_terms`` maps every name to
    its unweighted value (detached), for logging.
    """

    def __init__(
        self,
        terms: Mapping[str, nn.Module],
        weights: Mapping[str, float],
        keys: Mapping[str, str],
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("the objective needs at least one term")
        if set(weights) != set(terms) or set(keys) != set(terms):
            raise ValueError("terms, weights and keys must name the same terms")
        bad = {k for k in keys.values() if k not in KEYS}
        if bad:
            raise ValueError(f"keys must be one of {KEYS}, got {sorted(bad)}")
        self.terms = nn.ModuleDict(dict(terms))
        self.weights = {name: float(weights[name]) for name in terms}
        self.keys = {name: keys[name] for name in terms}
        self.last_terms: dict[str, Tensor] = {}

    def forward(self, video_emb: Tensor, music_emb: Tensor, keys: Mapping[str, Tensor]) -> Tensor:
        total: Tensor | None = None
        values = {}
        for name, loss in self.terms.items():
            key = keys[self.keys[name]]
            value = loss(video_emb, key, music_emb, key)
            values[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        self.last_terms = values
        return total  # type: ignore[return-value]


def build_objective(
    cfg: TrainConfig, num_keys: Mapping[str, int], embed_dim: int, labelled: bool
) -> Objective:
    """The configured objective. ``num_keys``: distinct tracks and labels of the training
    data (a proxy loss gets one proxy per key value); ``labelled``: whether every
    training clip has a label (required by ``key: label`` terms)."""
    from crossmodal.losses import SymmetricLoss, create_loss, is_proxy_loss, list_losses
    from crossmodal.sampling.memory import CrossBatchMemory

    terms: dict[str, nn.Module] = {}
    weights: dict[str, float] = {}
    keys: dict[str, str] = {}
    for term in cfg.losses:
        if term.name not in list_losses():
            raise CrossmodalError(
                f"unknown loss {term.name!r}; choose from {', '.join(list_losses())}"
            )
        if term.key == "label" and not labelled:
            raise CrossmodalError(
                f"loss {term.name!r} matches on key=label, but some training clips have no "
                "label: label them in the manifest or use key=track"
            )
        params = dict(term.params)
        proxy = is_proxy_loss(term.name)
        if proxy:
            params.setdefault("num_classes", num_keys[term.key])
            params.setdefault("embedding_dim", embed_dim)
        try:
            miner = None
            if term.miner is not None:
                from crossmodal.sampling.miners import create_miner

                miner = create_miner(term.miner, **term.miner_params)
            if cfg.memory_size > 0 and not proxy:
                # One memory per direction: each holds the other modality's past rows.
                base = create_loss(term.name, miner=miner, **params)
                forward, reverse = (
                    CrossBatchMemory(
                        loss, embed_dim, memory_size=cfg.memory_size, warmup_iters=cfg.memory_warmup
                    )
                    for loss in (base, copy.deepcopy(base))
                )
                loss = SymmetricLoss(forward, reverse) if term.symmetric else forward
            else:
                loss = create_loss(term.name, symmetric=term.symmetric, miner=miner, **params)
        except (TypeError, ValueError) as err:
            raise CrossmodalError(f"loss {term.name!r}: {err}") from err
        base_name = term.name if term.key == "track" else f"{term.name}_label"
        name, suffix = base_name, 2
        while name in terms:
            name, suffix = f"{base_name}_{suffix}", suffix + 1
        terms[name] = loss
        weights[name] = term.weight
        keys[name] = term.key
    return Objective(terms, weights, keys)


def learned_logit_scale(objective: nn.Module) -> Tensor | None:
    """The logit scale of the objective's first learnable InfoNCE term (clamped as the
    loss uses it), or None when there is none."""
    from crossmodal.losses import InfoNCELoss

    for module in objective.modules():
        if isinstance(module, InfoNCELoss) and module.learnable:
            return module.scale.detach()
    return None


def keys_of(tracks: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """The ``keys`` argument of :class:`Objective` (long tensors)."""
    return {"track": tracks.long(), "label": labels.long()}
