"""Training checkpoints: one file holding model, optimiser, schedule, RNG and config.

Written atomically (temp file + ``os.replace``): an interrupted save leaves the previous
checkpoint intact. Read with ``torch.load(weights_only=True)``, so a checkpoint holds
only tensors and primitive containers (configs are stored as plain dicts).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_path

FORMAT_VERSION = 1


class CheckpointError(CrossmodalError):
    """A checkpoint that cannot be read or does not fit what is asked of it."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (tensors, numbers, strings, lists, dicts) to ``path``."""
    payload = {"format_version": FORMAT_VERSION, **payload}
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
            f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); "
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


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors/primitives (weights_only-safe)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
