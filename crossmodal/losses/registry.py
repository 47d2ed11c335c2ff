"""Build losses by name: ``create_loss("circle", m=0.25)``, ``list_losses()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from crossmodal.losses.am_softmax import AMSoftmaxLoss
from crossmodal.losses.arcface import ArcFaceLoss
from crossmodal.losses.circle import CircleLoss
from crossmodal.losses.combine import default_objective
from crossmodal.losses.contrastive import ContrastiveLoss
from crossmodal.losses.cosface import CosFaceLoss
from crossmodal.losses.info_nce import InfoNCELoss
from crossmodal.losses.l2_softmax import L2SoftmaxLoss
from crossmodal.losses.large_margin_softmax import LargeMarginSoftmaxLoss
from crossmodal.losses.lifted_structure import LiftedStructureLoss
from crossmodal.losses.multi_similarity import MultiSimilarityLoss
from crossmodal.losses.normface import NormFaceLoss
from crossmodal.losses.npair import NPairLoss
from crossmodal.losses.proxy_base import ProxyLoss
from crossmodal.losses.proxy_circle import ProxyCircleLoss
from crossmodal.losses.sphereface import SphereFaceLoss
from crossmodal.losses.symmetric import SymmetricLoss
from crossmodal.losses.triplet_margin import TripletMarginLoss

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "contrastive": ContrastiveLoss,
    "triplet_margin": TripletMarginLoss,
    "lifted_structure": LiftedStructureLoss,
    "npair": NPairLoss,
    "multi_similarity": MultiSimilarityLoss,
    "circle": CircleLoss,
    "info_nce": InfoNCELoss,
    "l2_softmax": L2SoftmaxLoss,
    "large_margin_softmax": LargeMarginSoftmaxLoss,
    "sphereface": SphereFaceLoss,
    "normface": NormFaceLoss,
    "am_softmax": AMSoftmaxLoss,
    "cosface": CosFaceLoss,
    "arcface": ArcFaceLoss,
    "proxy_circle": ProxyCircleLoss,
    "default": default_objective,
}


def register_loss(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``create_loss(name, ...)`` call ``factory(...)``; names must be new."""
    if name in _REGISTRY:
        raise ValueError(f"a loss named {name!r} is already registered")
    _REGISTRY[name] = factory


def list_losses() -> list[str]:
    """Registered loss names, sorted."""
    return sorted(_REGISTRY)


def is_proxy_loss(name: str) -> bool:
    """True when ``name`` builds a proxy loss (needs ``num_classes``, ``embedding_dim``)."""
    factory = _REGISTRY[name]
    return isinstance(factory, type) and issubclass(factory, ProxyLoss)


def create_loss(
    name: str, *, symmetric: bool = False, miner: str | nn.Module | None = None, **kwargs: Any
) -> nn.Module:
    """Build the loss registered as ``name`` with ``kwargs``.

    ``symmetric=True`` wraps it in :class:`SymmetricLoss`. ``miner`` (a miner or a miner
    name for :func:`crossmodal.sampling.miners.create_miner`) is attached to a pairwise loss.
    Unknown names or arguments raise ``ValueError`` listing what is accepted.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(list_losses())}")
    if miner is not None:
        if isinstance(miner, str):
            from crossmodal.sampling.miners import create_miner

            miner = create_miner(miner)
        kwargs["miner"] = miner
    try:
        loss = _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for loss {name!r}: {exc}") from exc
    return SymmetricLoss(loss) if symmetric else loss
