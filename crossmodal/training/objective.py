"""The training objective: the configured loss terms, each matching on its own key, as
one :class:`~crossmodal.losses.WeightedSum`."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from crossmodal.errors import CrossmodalError
from crossmodal.losses import (
    DEFAULT_PRESET,
    WeightedSum,
    create_loss,
    list_losses,
    loss_kind,
)
from crossmodal.registry import UnknownNameError
from crossmodal.training.config import LossTerm, TrainConfig

__all__ = ["build_objective", "expand_presets", "keys_of"]


def expand_presets(terms: list[LossTerm]) -> list[LossTerm]:
    """``{name: default}`` replaced by the :data:`~crossmodal.losses.DEFAULT_PRESET`
    terms, with its weight, key and symmetry (each term once, never wrapped twice)."""
    expanded = []
    for term in terms:
        if term.name != "default":
            expanded.append(term)
            continue
        if term.params or term.miner is not None or term.miner_params:
            listed = ", ".join(f"{{name: {name}, params: {{...}}}}" for name in DEFAULT_PRESET)
            raise CrossmodalError(
                "'default' is a preset of the terms "
                f"{', '.join(DEFAULT_PRESET)} and takes no params or miner; to set them, "
                f"list the terms: --losses '[{listed}]'"
            )
        expanded += [
            LossTerm(name, weight=term.weight, key=term.key, symmetric=term.symmetric)
            for name in DEFAULT_PRESET
        ]
    return expanded


def build_objective(
    cfg: TrainConfig, num_keys: Mapping[str, int], embed_dim: int, labelled: bool
) -> WeightedSum:
    """The configured objective, called ``objective(video_emb, keys, music_emb, keys)``
    with ``keys`` from :func:`keys_of`. ``num_keys``: distinct tracks and labels of the
    training data (a proxy loss gets one proxy per key value); ``labelled``: whether
    every training clip has a label (required by ``key: label`` terms). Term names (the
    metrics log's keys) are the loss name, ``_label`` appended for ``key: label`` and a
    number for repeats: ``info_nce``, ``info_nce_label``, ``info_nce_2``."""
    terms: dict[str, nn.Module] = {}
    weights: dict[str, float] = {}
    keys: dict[str, str] = {}
    for term in expand_presets(cfg.losses):
        if term.name not in list_losses():
            raise CrossmodalError(
                f"unknown loss {term.name!r}; choose from {', '.join(list_losses())}, or "
                f"default (the preset {' + '.join(DEFAULT_PRESET)})"
            )
        if term.key == "label" and not labelled:
            raise CrossmodalError(
                f"loss {term.name!r} matches on key=label, but some training clips have no "
                "label: label them in the manifest or use key=track"
            )
        params = dict(term.params)
        miner = None if term.miner is None else {"name": term.miner, **term.miner_params}
        # A cross-batch memory adds reference rows, which only pairwise terms have.
        pairwise = loss_kind(term.name) == "pairwise"
        if not pairwise:
            params.setdefault("num_classes", num_keys[term.key])
        try:
            loss = create_loss(
                term.name,
                symmetric=term.symmetric,
                miner=miner,
                memory_size=cfg.memory_size if pairwise else 0,
                memory_warmup=cfg.memory_warmup,
                embedding_dim=embed_dim,
                **params,
            )
        except (UnknownNameError, TypeError, ValueError) as err:  # e.g. an unknown miner
            raise CrossmodalError(f"loss {term.name!r}: {err}") from err
        base_name = term.name if term.key == "track" else f"{term.name}_label"
        name, suffix = base_name, 2
        while name in terms:
            name, suffix = f"{base_name}_{suffix}", suffix + 1
        terms[name] = loss
        weights[name] = term.weight
        keys[name] = term.key
    return WeightedSum(terms, weights, keys)


def keys_of(tracks: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """The labels argument of the objective: key → long tensor."""
    return {"track": tracks.long(), "label": labels.long()}
