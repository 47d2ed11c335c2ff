"""The small corpus, trained model and index the notebooks share: the demo's
:class:`~crossmodal.apps.pipeline.Pipeline` at notebook size, cached per user.

Each notebook asks for what it needs (``assets.corpus()``, ``assets.model()``,
``assets.index()``); the first one to ask builds that stage, later ones (and later
runs) reuse it. The cache root is ``$CROSSMODAL_NOTEBOOK_CACHE``, else
``$XDG_CACHE_HOME/crossmodal/notebooks`` (``~/.cache/crossmodal/notebooks``).
``crossmodal notebooks`` builds ahead of time and prints where everything is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crossmodal.apps.pipeline import Pipeline, PipelineConfig
from crossmodal.fileio import user_cache_dir


def cache_root() -> Path:
    """``$CROSSMODAL_NOTEBOOK_CACHE``, else ``$XDG_CACHE_HOME/crossmodal/notebooks``."""
    explicit = os.environ.get("CROSSMODAL_NOTEBOOK_CACHE")
    return Path(explicit) if explicit else user_cache_dir("notebooks")


@dataclass(frozen=True)
class AssetConfig(PipelineConfig):
    """The pipeline at a 2-minute-per-notebook CPU budget: 300 clips of 64 px, six
    12-s library clips, the video tower at 32 px (about 1.7× cheaper than the registry's
    48), 8 epochs of batch 32 at lr 2e-3, no time cap. ``threads`` is one, because on a
    shared 2-core machine two threads spin against other processes and ran about 3×
    slower in wall-clock time than one."""

    clips: int = 300
    split: tuple[int, int, int] = (200, 20, 80)
    size: int = 64
    library_clips: int = 6
    video_size: int | None = 32
    epochs: int = 8
    batch_size: int = 32
    lr: float | None = 2e-3
    train_minutes: float | None = None
    threads: int | None = 1


class NotebookAssets(Pipeline):
    """The notebooks' pipeline: :class:`AssetConfig` under :func:`cache_root`."""

    def __init__(self, config: AssetConfig | None = None, root: str | Path | None = None) -> None:
        super().__init__(config or AssetConfig(), root if root is not None else cache_root())
