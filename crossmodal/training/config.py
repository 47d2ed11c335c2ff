"""The training configuration: one dataclass tree, loadable from YAML, every field
overridable on the command line (``--optim.lr 3e-4`` or ``--lr 3e-4``).

Values are checked when a config is built, so a bad value fails before any data is read,
with a message naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from crossmodal.config import ConfigError, field_paths, from_dict, to_dict
from crossmodal.model import ModelConfig


@dataclass
class LossTerm:
    """One term of the objective: ``weight · loss(video_emb, keys, music_emb, keys)``.

    ``name`` is any of :func:`crossmodal.losses.list_losses`, or ``default``: the preset
    :data:`crossmodal.losses.DEFAULT_PRESET` (InfoNCE and N-pair), expanded into its
    terms with this term's weight, key and symmetry. ``key`` is what makes two
    clips a positive pair for this term: ``track`` (the same music: instance matching)
    or ``label`` (the same category, e.g. mood; every training clip then needs a label).
    Proxy losses get one class proxy per distinct key. ``symmetric`` adds the
    music→video direction (the two directions averaged); ``miner`` names a miner from
    :func:`crossmodal.sampling.miners.list_miners` for pairwise losses (``miner_params`` go to
    it); ``params`` go to the loss. ``part``: which part of a two-part (sync + vibe) model
    the term trains: ``auto`` (``key: track`` → sync, ``key: label`` → vibe), ``sync``,
    ``vibe``, or ``whole`` (the emitted vector, both parts at the default blend); a model
    with one part ignores it.
    """

    name: str = "info_nce"
    weight: float = 1.0
    key: Literal["track", "label"] = "track"
    symmetric: bool = True
    miner: str | None = None
    miner_params: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    part: Literal["auto", "sync", "vibe", "whole"] = "auto"

    def __post_init__(self) -> None:
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ConfigError(f"loss {self.name!r}: weight must be >= 0, got {self.weight}")
        if self.part not in ("auto", "sync", "vibe", "whole"):
            raise ConfigError(
                f"loss {self.name!r}: part must be auto, sync, vibe or whole, got {self.part!r}"
            )


def default_losses() -> list[LossTerm]:
    """The default objective's terms (a fresh list each call); the trainer and
    :func:`~crossmodal.training.objective.build_objective` compare a config's losses with
    it to tell the default, which adapts to an unlabelled corpus, from a user's choice."""
    # Sync (instance) terms, then the mood term that trains the model's vibe part; the
    # mood term is left out, with a log line, when the training clips have no labels.
    return [
        LossTerm("info_nce", 1.0),
        LossTerm("npair", 1.0),
        # NormFace's own default scale, derived from the class count (5.2 for six
        # moods): measured better than the paper's 20 on both levels of the tuning
        # corpus (docs/training.md, "Two levels").
        LossTerm("normface", 1.0, key="label"),
    ]


# The default music tower's options: its clip summary (tempo periodicity, register,
# timbre), which lifted the music side's mood accuracy from 0.63 to 0.75 on the tuning
# corpus, and the harmony summary (key and mode of what the clip holds, read from the
# waveform), which lifted a linear probe's from 0.75 to 0.79 (docs/training.md, "Two
# levels: sync and vibe"). They belong to that tower: a config that names another music
# encoder drops each of them that it leaves at its default value.
DEFAULT_MUSIC_ENCODER = "audio_tiny"
DEFAULT_MUSIC_OVERRIDES: dict[str, Any] = {
    "summary_lags": 100,
    "representation": "waveform",
    "harmony": True,
}


def _default_model() -> ModelConfig:
    # Two parts: the sync embedding and a vibe part trained on moods (labels); the blend
    # is chosen in docs/training.md, "Two levels: sync and vibe". The vibe heads read
    # each tower's clip view (time bins averaged out) through dropout 0.5: over the
    # time-binned features they learned the training clips, not their moods (test mood
    # accuracy 0.91 video / 0.74 music against 0.995 / 0.998 on the training clips).
    return ModelConfig(
        vibe_dim=32,
        vibe_input="clip",
        vibe_dropout=0.5,
        blend=0.2,
        music_overrides=dict(DEFAULT_MUSIC_OVERRIDES),
    )


@dataclass
class AugmentConfig:
    """Training-time augmentations (:class:`crossmodal.data.augment.ClipAugment`), each
    off at 0: ``crop`` (frames cut to a side of U(1 − crop, 1) and resized back),
    ``colour`` (brightness, contrast, saturation × U(1 ± colour)), ``gain_db``,
    ``eq_db`` (a spectral tilt), ``noise`` (a noise floor up to that fraction of the
    window's power); ``spec_augment`` masks log-mel bands and spans
    (:class:`crossmodal.data.specaugment.SpecAugment`). All off by default: measured in
    ``bench/results/augment.md``, none gained more than a change of seed alone does.
    ``spec_augment`` needs a log-mel music encoder; the others act on either input.
    """

    crop: float = 0.0
    colour: float = 0.0
    gain_db: float = 0.0
    eq_db: float = 0.0
    noise: float = 0.0
    spec_augment: bool = False

    def __post_init__(self) -> None:
        for name in ("crop", "colour"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(
                    f"data.augment.{name} must be in [0, 1), got {getattr(self, name)}"
                )
        for name in ("gain_db", "eq_db", "noise"):
            _at_least(f"data.augment.{name}", getattr(self, name), 0)


@dataclass
class DataConfig:
    """Where the clips come from and how batches are formed.

    ``manifest``: a manifest (.jsonl) or a folder of videos; a manifest without splits
    trains on every clip without validation. ``sampler`` "random" shuffles clips into
    full batches; "pk" draws ``batch_size / pk_per_class`` distinct classes of
    ``pk_key`` × ``pk_per_class`` clips each (``label``: clips of one mood share a batch,
    hard in-class negatives; ``track``: several clips of one song per batch, for corpora
    where songs have several clips). ``jitter``: the music window moves by up to ± that
    many seconds from the video's during training. ``on_error``: "skip" replaces an
    undecodable clip (logged), "raise" stops. ``cache_dir``: the decoded-clip and
    frozen-feature cache (default ``~/.cache/crossmodal/features``).
    ``val_max_clips``: validate on the first N clips of the val split only.
    ``augment``: training-time augmentations (:class:`AugmentConfig`).
    A manifest without a ``val_split`` gets one carved from ``train_split`` (from every
    clip when none has a split): whole tracks, seeded, about ``val_fraction`` of the
    clips, at most ``val_carve_max``; stored in the run folder (``carve.json``).
    """

    manifest: str = ""
    train_split: str = "train"
    val_split: str = "val"
    num_workers: int = 0
    sampler: Literal["random", "pk"] = "random"
    pk_key: Literal["label", "track"] = "label"
    pk_per_class: int = 16
    jitter: float = 0.0
    on_error: Literal["skip", "raise"] = "skip"
    cache_dir: str | None = None
    val_max_clips: int | None = None
    val_fraction: float = 0.1
    val_carve_max: int = 300
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        _at_least("data.num_workers", self.num_workers, 0)
        _at_least("data.pk_per_class", self.pk_per_class, 1)
        _at_least("data.jitter", self.jitter, 0)
        _at_least("data.val_carve_max", self.val_carve_max, 1)
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.val_max_clips is not None:
            _at_least("data.val_max_clips", self.val_max_clips, 1)


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``min_lr_ratio · lr``.

    Weight decay applies to matrices only. ``grad_clip``: max global gradient norm
    (0 turns clipping off). ``accum_steps``: micro-batches per optimiser step (the
    loss of each micro-batch is its own: accumulation does not widen the contrastive
    batch).
    """

    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    accum_steps: int = 1

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        _at_least("optim.weight_decay", self.weight_decay, 0)
        _at_least("optim.grad_clip", self.grad_clip, 0)
        _at_least("optim.accum_steps", self.accum_steps, 1)
        for name in ("warmup_fraction", "min_lr_ratio"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"optim.{name} must be in [0, 1], got {value}")


@dataclass
class BudgetConfig:
    """How long a run trains when ``epochs`` is unset (see
    :mod:`crossmodal.training.budget`): validate every ``eval_every_steps`` optimiser
    steps; after ``patience_steps`` without a gain of ``min_delta`` in the validation
    score (mean mAP of both directions), never before ``min_steps``, cool down (cosine
    decay over ``cooldown_fraction`` of the steps done) and stop; cool down anyway so as to
    end by ``max_steps``, or by ``max_minutes`` of training (the default 9 keeps a whole
    ``crossmodal train``, final validation and baseline included, near 10 minutes; the
    run-level ``max_minutes`` replaces it, and ``null`` lifts it).
    """

    min_steps: int = 150
    max_steps: int = 3000
    eval_every_steps: int = 25
    patience_steps: int = 75
    min_delta: float = 0.005
    cooldown_fraction: float = 0.2
    max_minutes: float | None = 9.0

    def __post_init__(self) -> None:
        _at_least("budget.min_steps", self.min_steps, 1)
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"budget.max_minutes must be > 0, got {self.max_minutes}")
        _at_least("budget.eval_every_steps", self.eval_every_steps, 1)
        _at_least("budget.patience_steps", self.patience_steps, 1)
        _at_least("budget.min_delta", self.min_delta, 0)
        if self.max_steps < self.min_steps:
            raise ConfigError(
                f"budget.max_steps ({self.max_steps}) must be >= budget.min_steps "
                f"({self.min_steps})"
            )
        if not 0 < self.cooldown_fraction <= 1:
            raise ConfigError(
                f"budget.cooldown_fraction must be in (0, 1], got {self.cooldown_fraction}"
            )


@dataclass
class TrainConfig:
    """Everything ``crossmodal train`` needs; stored inside every checkpoint.

    ``losses``: the objective, a weighted sum of :class:`LossTerm`. ``epochs``: train
    exactly that many epochs (warm-up + cosine over them); unset (the default), the run
    stops on convergence within ``budget`` (:class:`BudgetConfig`). ``frozen_backbones``
    trains only the projection heads on backbone features computed once per clip at
    ``frozen_windows`` fixed windows and kept in the feature cache (fast).
    ``memory_size`` > 0 gives every pairwise term a cross-batch memory of that many past
    embeddings per direction, used after ``memory_warmup`` steps. ``max_minutes`` stops
    training after the step that passes it, then validates and saves (resumable).
    In a convergence run the cool-down starts so as to end near ``max_minutes``.
    ``amp``: autocast dtype, on CUDA only. ``seed``: every random choice of a run (model
    init, batch order, windows, dropout) is a function of the seed, the epoch and the
    position in it, so a resumed run repeats the uninterrupted one. ``device``: "auto"
    (CUDA when available), "cpu", "cuda", "cuda:1". ``eval_every``: with ``epochs``,
    validate every N epochs (and after the last; a convergence run validates on
    ``budget.eval_every_steps``); ``log_every``: a metrics record every N steps;
    ``max_bad_steps``: consecutive non-finite steps before training stops;
    ``threads``: torch CPU threads (default: torch's choice).
    """

    model: ModelConfig = field(default_factory=_default_model)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: list[LossTerm] = field(default_factory=default_losses)
    epochs: int | None = None
    budget: BudgetConfig = field(default_factory=BudgetConfig)
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

    @property
    def time_limit(self) -> float | None:
        """Minutes this run may train: ``max_minutes`` when set, else ``budget.max_minutes``
        for a convergence run (``epochs`` unset); a fixed ``epochs`` run has no default
        limit."""
        if self.max_minutes is not None:
            return self.max_minutes
        return self.budget.max_minutes if self.epochs is None else None

    def __post_init__(self) -> None:
        if not self.losses:
            raise ConfigError("losses: the objective needs at least one loss term")
        if self.model.music_encoder != DEFAULT_MUSIC_ENCODER:
            # Another music encoder: the default tower's options do not apply to it. A
            # config merges the user's options over the defaults, so drop every default
            # option that the user left at its default value and keep the rest.
            kept = {
                k: v
                for k, v in self.model.music_overrides.items()
                if k not in DEFAULT_MUSIC_OVERRIDES or DEFAULT_MUSIC_OVERRIDES[k] != v
            }
            if kept != self.model.music_overrides:
                self.model = dataclasses.replace(self.model, music_overrides=kept)
        if self.epochs is not None:
            _at_least("epochs", self.epochs, 1)
        _at_least("batch_size", self.batch_size, 2)
        _at_least("frozen_windows", self.frozen_windows, 1)
        _at_least("memory_size", self.memory_size, 0)
        _at_least("memory_warmup", self.memory_warmup, 0)
        _at_least("seed", self.seed, 0)
        _at_least("eval_every", self.eval_every, 1)
        _at_least("log_every", self.log_every, 1)
        _at_least("max_bad_steps", self.max_bad_steps, 1)
        if self.threads is not None:
            _at_least("threads", self.threads, 1)
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max_minutes must be > 0, got {self.max_minutes}")


# Fields a resumed run may change: where the data lives and how it is read, how long to
# train, where and how verbosely. Everything else would make a different run.
RESUMABLE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("epochs",),
    ("max_minutes",),
    ("budget", "min_steps"),
    ("budget", "max_steps"),
    ("budget", "max_minutes"),
    ("device",),
    ("threads",),
    ("eval_every",),
    ("log_every",),
    ("max_bad_steps",),
    ("data", "manifest"),
    ("data", "cache_dir"),
    ("data", "num_workers"),
    ("data", "on_error"),
    ("data", "val_max_clips"),
)


def config_for_resume(
    stored: TrainConfig,
    requested: TrainConfig,
    explicit: Iterable[tuple[str, ...]] | None = None,
) -> TrainConfig:
    """The config of a resumed run: ``stored`` with ``requested``'s values of the
    :data:`RESUMABLE_FIELDS`.

    ``explicit``: the field paths the user actually set (None: all of them). A field
    the user set to a value other than the stored one that is not resumable is an error
    naming it, never silently ignored; an unset field keeps the stored value.
    """
    stored_d, requested_d = to_dict(stored), to_dict(requested)
    paths = field_paths(TrainConfig) if explicit is None else list(explicit)
    changed = []
    for path in paths:
        old, new = _get(stored_d, path), _get(requested_d, path)
        if old == new:
            continue
        if path in RESUMABLE_FIELDS:
            _set(stored_d, path, new)
        else:
            changed.append(f"{'.'.join(path)} ({old!r} → {new!r})")
    if changed:
        allowed = ", ".join(".".join(p) for p in RESUMABLE_FIELDS)
        raise ConfigError(
            f"a resumed run keeps its config; cannot change {'; '.join(changed)}. "
            f"Fields a resume may change: {allowed}. Start a new run (another --out) to "
            "change the others"
        )
    return from_dict(TrainConfig, stored_d)


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
