"""Build miners by name: ``create_miner("batch_hard")``, ``list_miners()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crossmodal.sampling.miners.base import Miner
from crossmodal.sampling.miners.batch_hard import BatchHardMiner
from crossmodal.sampling.miners.distance_weighted import DistanceWeightedMiner
from crossmodal.sampling.miners.multi_similarity import MultiSimilarityMiner
from crossmodal.sampling.miners.semi_hard import SemiHardMiner

_REGISTRY: dict[str, Callable[..., Miner]] = {
    "batch_hard": BatchHardMiner,
    "semi_hard": SemiHardMiner,
    "multi_similarity": MultiSimilarityMiner,
    "distance_weighted": DistanceWeightedMiner,
}


def register_miner(name: str, factory: Callable[..., Miner]) -> None:
    """Make ``create_miner(name, ...)`` call ``factory(...)``; names must be new."""
    if name in _REGISTRY:
        raise ValueError(f"a miner named {name!r} is already registered")
    _REGISTRY[name] = factory


def list_miners() -> list[str]:
    """Registered miner names, sorted."""
    return sorted(_REGISTRY)


def create_miner(name: str, **kwargs: Any) -> Miner:
    """Build the miner registered as ``name``; unknown names/arguments raise ``ValueError``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown miner {name!r}; choose one of {', '.join(list_miners())}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for miner {name!r}: {exc}") from exc
