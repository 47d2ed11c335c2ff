"""Training checkpoints: one file holding model, objective, optimiser, schedule, progress
and config (no RNG state: a run's randomness is a function of its position, see
:mod:`crossmodal.training.seeding`).

Written atomically (temp file + ``os.replace``): an interrupted save leaves the previous
checkpoint intact. Read with ``torch.load(weights_only=True)``, so a checkpoint holds
only tensors and primitive containers (configs are stored as plain dicts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crossmodal.errors import CrossmodalError, torch_load_reason
from crossmodal.fileio import atomic_path, remove_temp_files_of

FORMAT_VERSION = 1


class CheckpointError(CrossmodalError):
    """A checkpoint that cannot be read or does not fit what is asked of it."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (tensors, numbers, strings, lists, dicts) to ``path``."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    # A run killed mid-save left `.last.*.tmp.pt` beside the checkpoint: one writer per run
    # folder (rank 0), so any such file now is a leftover.
    remove_temp_files_of(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged zip/pickle stream
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({torch_load_reason(err)}); "
            "it may be truncated or not a crossmodal checkpoint"
        ) from err
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a crossmodal checkpoint")
    if payload["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format_version']}; this crossmodal "
            f"reads up to {FORMAT_VERSION}: upgrade crossmodal"
        )
    return payload
