"""The training configuration: one dataclass tree, loadable from YAML, every field
overridable on the command line (``--optim.lr 3e-4`` or ``--lr 3e-4``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from crossmodal.model import ModelConfig


@dataclass
class LossTerm:
    """One term of the objective: ``weight · loss(video, keys, music, keys)``.

    ``name`` is any of :func:`crossmodal.losses.list_losses`; ``symmetric`` also adds the
    music→video direction (averaged); ``miner`` names a miner from
    :func:`crossmodal.miners.list_miners` for pairwise losses; ``params`` go to the loss.
    """

    name: str = "info_nce"
    weight: float = 1.0
    symmetric: bool = True
    miner: str | None = None
    miner_params: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def _default_losses() -> list[LossTerm]:
    return [LossTerm("info_nce", 1.0), LossTerm("npair", 1.0)]


@dataclass
class DataConfig:
    """Where the clips come from and how batches are formed.

    ``sampler`` "random" shuffles clips; "pk" draws ``pk_classes`` classes × ``pk_per_class``
    clips of the ``pk_key`` (``label``, e.g. mood: hard in-class negatives; or ``track``).
    """

    manifest: str = ""
    train_split: str = "train"
    val_split: str = "val"
    num_workers: int = 0
    sampler: Literal["random", "pk"] = "random"
    pk_key: Literal["label", "track"] = "label"
    pk_per_class: int = 8
    jitter: float = 0.0
    on_error: Literal["skip", "raise"] = "skip"
    cache_dir: str | None = None
    val_max_clips: int | None = None


@dataclass
class OptimConfig:
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    accum_steps: int = 1


@dataclass
class TrainConfig:
    """Everything ``crossmodal train`` needs; stored inside every checkpoint.

    ``match_key`` is what counts as a positive pair in the loss: ``track`` (the clip's
    music: instance-level matching, the default) or ``label`` (category). Proxy losses
    get one proxy per distinct key. ``frozen_backbones`` trains only the projection heads
    on backbone features computed once (fast); ``memory_size`` > 0 adds a cross-batch
    memory of past music embeddings as extra references after ``memory_warmup`` steps.
    ``max_minutes`` stops training early (after a step) and still evaluates and saves.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: list[LossTerm] = field(default_factory=_default_losses)
    match_key: Literal["track", "label"] = "track"
    epochs: int = 10
    batch_size: int = 64
    max_minutes: float | None = None
    frozen_backbones: bool = False
    frozen_windows: int = 4
    memory_size: int = 0
    memory_warmup: int = 100
    amp: Literal["none", "bf16", "fp16"] = "none"
    seed: int = 0
    device: str = "auto"
    eval_every: int = 1
    log_every: int = 10
    max_bad_steps: int = 5
    threads: int | None = None
