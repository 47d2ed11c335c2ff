"""Miners: choose the informative pairs of a batch, as masks the pairwise losses accept."""

from __future__ import annotations

from crossmodal.sampling.miners.base import Miner
from crossmodal.sampling.miners.batch_hard import BatchHardMiner
from crossmodal.sampling.miners.distance_weighted import DistanceWeightedMiner
from crossmodal.sampling.miners.multi_similarity import MultiSimilarityMiner
from crossmodal.sampling.miners.registry import create_miner, list_miners, register_miner
from crossmodal.sampling.miners.semi_hard import SemiHardMiner

__all__ = [
    "BatchHardMiner",
    "DistanceWeightedMiner",
    "Miner",
    "MultiSimilarityMiner",
    "SemiHardMiner",
    "create_miner",
    "list_miners",
    "register_miner",
]
