"""One checkpoint format for every crossmodal file written with ``torch.save``.

A model file (``model.pt``, :meth:`crossmodal.model.CrossModalModel.save`) holds
``{"format_version", "config", "state_dict"}``; a training checkpoint (``last.pt``,
``best.pt``) is the same model checkpoint plus the training state (objective, optimiser,
schedule, progress, train config), so :meth:`~crossmodal.model.CrossModalModel.load`
reads either. Writes are atomic (temp file + rename: an interrupted save leaves the
previous file intact); reads use ``torch.load(weights_only=True)``, so a checkpoint holds
only tensors and primitive containers (configs are stored as plain dicts).

Files of earlier versions load: format 1 model files (``{"format":
"crossmodal.model/1", "config", "state_dict"}``) and format 1 training checkpoints
(``model_config``/``model`` for the model's config and weights) are read into today's
layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crossmodal.errors import CrossmodalError, torch_load_reason
from crossmodal.fileio import atomic_path, remove_temp_files_of

FORMAT_VERSION = 2
# What format-1 model files carried instead of a format_version.
_LEGACY_MODEL_FORMAT = "crossmodal.model/1"


class CheckpointError(CrossmodalError):
    """A checkpoint or model file that cannot be read or does not fit what is asked of it."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (tensors, numbers, strings, lists, dicts) to ``path``."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    # A process killed mid-save left `.last.*.tmp.pt` beside the file. Checkpoints have one
    # writer (rank 0 of a run; the index's writer lock for its model files), so any such
    # file now is a leftover.
    remove_temp_files_of(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, what: str = "checkpoint"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``), or by
    an earlier version (see the module docstring), in today's layout. ``what`` names the
    expected kind of file in errors ("model file")."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: {what} not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged zip/pickle stream
        raise CheckpointError(
            f"cannot read {path}: the {what} is unreadable ({torch_load_reason(err)}); "
            "it may be truncated or not a crossmodal checkpoint"
        ) from err
    if isinstance(payload, dict) and payload.get("format") == _LEGACY_MODEL_FORMAT:
        payload = {"format_version": 1, **{k: v for k, v in payload.items() if k != "format"}}
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a crossmodal {what}")
    if payload["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format_version']}; this crossmodal "
            f"reads up to {FORMAT_VERSION}: upgrade crossmodal"
        )
    if payload["format_version"] == 1 and "model_config" in payload:
        # A format-1 training checkpoint kept the model under other names.
        payload["config"] = payload.pop("model_config")
        payload["state_dict"] = payload.pop("model")
    return payload
