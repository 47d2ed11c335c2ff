"""Miners: choose the informative pairs of a batch, as masks the pairwise losses accept."""

from __future__ import annotations

from crossmodal.miners.base import Miner
from crossmodal.miners.batch_hard import BatchHardMiner
from crossmodal.miners.distance_weighted import DistanceWeightedMiner
from crossmodal.miners.multi_similarity import MultiSimilarityMiner
from crossmodal.miners.registry import create_miner, list_miners, register_miner
from crossmodal.miners.semi_hard import SemiHardMiner

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
