"""Shared pieces of the training tests: the tiny model and config, state digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

CLIPS, SPLIT = 32, (24, 4, 4)
# 2.5 s clips, 2 s windows: training windows really move.
CLIP_SECONDS, WINDOW_SECONDS = 2.5, 2.0

TINY_VIDEO: dict[str, Any] = {
    "num_frames": 8,
    "size": 16,
    "fps": 4.0,
    "channels": [4, 8],
    "temporal_channels": 8,
    "temporal_layers": 1,
    "out_channels": 8,
    "num_bins": 2,
}
TINY_AUDIO: dict[str, Any] = {
    "sample_rate": 8000,
    "seconds": WINDOW_SECONDS,
    "n_mels": 16,
    "n_fft": 256,
    "hop_length": 160,
    "channels": [4, 8, 8],
    "temporal_channels": 8,
    "temporal_layers": 1,
    "out_channels": 8,
    "num_bins": 2,
}


def tiny_overrides(corpus: Path, cache_dir: Path, **fields: Any) -> list[str]:
    """Command-line overrides of the tiny set-up (plus ``fields``: name → value)."""
    base: dict[str, Any] = {
        "data.manifest": str(corpus),
        "data.cache_dir": str(cache_dir),
        "model.video_overrides": TINY_VIDEO,
        "model.music_overrides": TINY_AUDIO,
        "model.embed_dim": 16,
        "batch_size": 8,
        "epochs": 2,
        "log_every": 1,
        "threads": 1,
        **fields,
    }
    args: list[str] = []
    for key, value in base.items():
        args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return args


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names and exact bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
