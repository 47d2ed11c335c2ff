"""Build miners by name: ``create_miner("batch_hard")``, ``list_miners()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crossmodal.registry import Registry
from crossmodal.sampling.miners.base import Miner
from crossmodal.sampling.miners.batch_hard import BatchHardMiner
from crossmodal.sampling.miners.distance_weighted import DistanceWeightedMiner
from crossmodal.sampling.miners.multi_similarity import MultiSimilarityMiner
from crossmodal.sampling.miners.semi_hard import SemiHardMiner

MINERS: Registry[Miner] = Registry("miner")
MINERS.register("batch_hard", BatchHardMiner)
MINERS.register("semi_hard", SemiHardMiner)
MINERS.register("multi_similarity", MultiSimilarityMiner)
MINERS.register("distance_weighted", DistanceWeightedMiner)


def register_miner(name: str, factory: Callable[..., Miner], **meta: Any) -> None:
    """Make ``create_miner(name, ...)`` call ``factory(...)``; names must be new."""
    MINERS.register(name, factory, **meta)


def list_miners() -> list[str]:
    """Registered miner names, sorted."""
    return MINERS.names()


def create_miner(name: str, **kwargs: Any) -> Miner:
    """Build the miner registered as ``name``.

    An unknown name raises :class:`~crossmodal.registry.UnknownNameError` (with close
    matches), arguments the miner does not take
    :class:`~crossmodal.registry.BadArgumentsError` (listing its options); bad values
    raise the miner's own ``ValueError``.
    """
    return MINERS.create(name, **kwargs)
