"""Training: config, builders, the loop, checkpoints and the frozen-backbone regime.

The library (model, losses, data, retrieval) knows nothing about this package; the
trainer composes them.
"""

from __future__ import annotations

from crossmodal.training.config import DataConfig, LossTerm, OptimConfig, TrainConfig
from crossmodal.training.trainer import Trainer, TrainingDivergedError, TrainResult, train

__all__ = [
    "DataConfig",
    "LossTerm",
    "OptimConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "train",
]
