"""Training: config, builders, the objective, the loop, checkpoints and the
frozen-backbone regime.

The library (model, losses, data, retrieval) knows nothing about this package; the
trainer composes them.
"""

from __future__ import annotations

from crossmodal.training.config import (
    RESUMABLE_FIELDS,
    DataConfig,
    LossTerm,
    OptimConfig,
    TrainConfig,
    config_for_resume,
)
from crossmodal.training.objective import build_objective
from crossmodal.training.trainer import Trainer, TrainingDivergedError, TrainResult, train

__all__ = [
    "RESUMABLE_FIELDS",
    "DataConfig",
    "LossTerm",
    "OptimConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "build_objective",
    "config_for_resume",
    "train",
]
