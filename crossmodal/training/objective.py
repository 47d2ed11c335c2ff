"""The training objective: the configured loss terms, each matching on its own key, as
one :class:`~crossmodal.losses.WeightedSum`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from torch import Tensor, nn

from crossmodal.embedding_layout import EmbeddingLayout
from crossmodal.errors import CrossmodalError
from crossmodal.losses import (
    DEFAULT_PRESET,
    WeightedSum,
    create_loss,
    list_losses,
    loss_kind,
)
from crossmodal.registry import UnknownNameError
from crossmodal.training.config import LossTerm, TrainConfig, default_losses

__all__ = ["OnPart", "build_objective", "expand_presets", "keys_of", "mood_prototypes"]

log = logging.getLogger(__name__)


class OnPart(nn.Module):
    """A loss applied to one part (sync or vibe) of a two-part embedding: the part is
    cut out of both modalities' vectors and renormalised, then ``loss`` sees it as its
    embeddings (same call as every loss)."""

    def __init__(self, loss: nn.Module, layout: EmbeddingLayout, part: str) -> None:
        super().__init__()
        if part not in ("sync", "vibe") or not layout.has_vibe:
            raise ValueError(f"part must be sync or vibe of a two-part layout, got {part!r}")
        self.loss = loss
        self.layout = layout
        self.part = part

    def _cut(self, emb: Tensor | None) -> Tensor | None:
        if emb is None:
            return None
        sync, vibe = self.layout.split(emb)
        return sync if self.part == "sync" else vibe

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        miner_masks: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        return self.loss(
            self._cut(embeddings), labels, self._cut(ref_emb), ref_labels, miner_masks=miner_masks
        )


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
            LossTerm(
                name, weight=term.weight, key=term.key, symmetric=term.symmetric, part=term.part
            )
            for name in DEFAULT_PRESET
        ]
    return expanded


def build_objective(
    cfg: TrainConfig,
    num_keys: Mapping[str, int],
    embed_dim: int | EmbeddingLayout,
    labelled: bool,
) -> WeightedSum:
    """The configured objective, called ``objective(video_emb, keys, music_emb, keys)``
    with ``keys`` from :func:`keys_of`. ``num_keys``: distinct tracks and labels of the
    training data (a proxy loss gets one proxy per key value); ``labelled``: whether
    every training clip has a label (required by ``key: label`` terms; the default
    objective's label terms are dropped, with a log line, when clips have none).
    ``embed_dim``: the embedding width, or the model's :class:`EmbeddingLayout`: with a
    vibe part, ``key: track`` terms train the sync part and ``key: label`` terms the vibe
    part (each through :class:`OnPart`), unless the term names its ``part``. Term names (the metrics log's keys) are the loss
    name, ``_label`` appended for ``key: label`` and a number for repeats: ``info_nce``,
    ``info_nce_label``, ``info_nce_2``."""
    layout = embed_dim if isinstance(embed_dim, EmbeddingLayout) else EmbeddingLayout(embed_dim)
    terms: dict[str, nn.Module] = {}
    weights: dict[str, float] = {}
    keys: dict[str, str] = {}
    requested = expand_presets(cfg.losses)
    if not labelled and cfg.losses == default_losses():
        dropped = [t.name for t in requested if t.key == "label"]
        requested = [t for t in requested if t.key != "label"]
        if dropped:
            log.warning(
                "some training clips have no label: training the instance level only "
                "(mood terms %s left out, no vibe part)",
                ", ".join(dropped),
            )
    for term in requested:
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
        part = None
        if layout.has_vibe and term.part != "whole":
            part = term.part if term.part != "auto" else "vibe" if term.key == "label" else "sync"
        if not pairwise:
            params.setdefault("num_classes", num_keys[term.key])
        try:
            loss = create_loss(
                term.name,
                symmetric=term.symmetric,
                miner=miner,
                memory_size=cfg.memory_size if pairwise else 0,
                memory_warmup=cfg.memory_warmup,
                embedding_dim={None: layout.dim, "sync": layout.sync_dim, "vibe": layout.vibe_dim}[
                    part
                ],
                **params,
            )
        except (UnknownNameError, TypeError, ValueError) as err:  # e.g. an unknown miner
            raise CrossmodalError(f"loss {term.name!r}: {err}") from err
        if part is not None:
            loss = OnPart(loss, layout, part)
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


def mood_prototypes(objective: WeightedSum, num_labels: int) -> Tensor | None:
    """The (num_labels, vibe_dim) class proxies of the objective's first vibe-part proxy
    term, detached; None when the vibe part is trained by no proxy loss."""
    from crossmodal.losses.proxy_base import ProxyLoss

    for term in objective.terms.values():
        if isinstance(term, OnPart) and term.part == "vibe":
            for module in term.modules():
                if isinstance(module, ProxyLoss) and module.num_classes == num_labels:
                    return module.weight.detach().cpu()
    return None
