"""Builders that turn a :class:`TrainConfig` into the objects the trainer composes:
datasets, per-epoch batch lists and the optimiser."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossmodal.data.augment import ClipAugment
from crossmodal.data.specaugment import SpecAugment
from crossmodal.data.splits import check_media_exist
from crossmodal.errors import CrossmodalError
from crossmodal.fileio import user_cache_dir
from crossmodal.training.config import TrainConfig

log = logging.getLogger(__name__)


def build_datasets(
    cfg: TrainConfig, video_spec, audio_spec, run_dir: Path | None = None, write: bool = True
):
    """(train, val or None) :class:`~crossmodal.data.PairedClipDataset` of the manifest.

    Without a val split, one is carved from the training clips (see
    :mod:`crossmodal.data.carve`; kept in ``run_dir``, written there when ``write``).
    """
    from crossmodal.data import PairedClipDataset, read_manifest
    from crossmodal.data.carve import with_val_split

    if not cfg.data.manifest:
        raise CrossmodalError("no training data: pass --data MANIFEST.jsonl or a folder of videos")
    records = with_val_split(
        read_manifest(cfg.data.manifest),
        train_split=cfg.data.train_split,
        val_split=cfg.data.val_split,
        fraction=cfg.data.val_fraction,
        max_clips=cfg.data.val_carve_max,
        seed=cfg.seed,
        run_dir=run_dir,
        write=write,
    )
    if all(r.split is None for r in records):
        log.warning(
            "the clips of %s have no split: training on all %d of them without validation",
            cfg.data.manifest,
            len(records),
        )
        train_records, val_records = list(records), []
    else:
        train_records = [r for r in records if r.split == cfg.data.train_split]
        if not train_records:
            present = sorted({r.split for r in records if r.split})
            raise CrossmodalError(
                f"the {cfg.data.train_split!r} split of {cfg.data.manifest} is empty "
                f"(splits present: {', '.join(present)}); choose one with --data.train_split"
            )
        val_records = [r for r in records if r.split == cfg.data.val_split]
        if not val_records:
            log.warning("no %r split: training without validation", cfg.data.val_split)
    if cfg.data.val_max_clips:
        val_records = val_records[: cfg.data.val_max_clips]
    check_media_exist(train_records + val_records)
    common = dict(
        cache=cfg.data.cache_dir or user_cache_dir("features"), on_error=cfg.data.on_error
    )
    train = PairedClipDataset(
        train_records,
        video_spec,
        audio_spec,
        train=True,
        jitter=cfg.data.jitter,
        **training_augmentations(cfg, audio_spec),
        labels=sorted({r.label for r in records if r.label is not None}),
        **common,
    )
    val = None
    if val_records:
        val = PairedClipDataset(
            val_records, video_spec, audio_spec, train=False, labels=train.labels, **common
        )
    return train, val


def training_augmentations(cfg: TrainConfig, audio_spec) -> dict:
    """The train dataset's ``augment`` and ``spec_augment`` from ``data.augment``."""
    aug = cfg.data.augment
    clip = ClipAugment(aug.crop, aug.colour, aug.gain_db, aug.eq_db, aug.noise)
    if aug.spec_augment and audio_spec.representation != "logmel":
        raise CrossmodalError(
            "data.augment.spec_augment masks log-mel bands, but the music encoder takes "
            f"{audio_spec.representation}s; turn spec_augment off, or train a log-mel "
            "tower (the default's without its harmony summary: "
            "--model.music_overrides '{summary_lags: 100}')"
        )
    return {
        "augment": clip if clip.active else None,
        "spec_augment": SpecAugment() if aug.spec_augment else None,
    }


def sampler_keys(cfg: TrainConfig, train_set) -> np.ndarray:
    """The per-item class the P×K sampler groups by (``data.pk_key``)."""
    if cfg.data.pk_key == "label":
        keys = train_set.label_indices
        if (keys < 0).any():
            raise CrossmodalError(
                f"--data.sampler pk with pk_key=label needs a label on every training clip; "
                f"{int((keys < 0).sum())} have none (use pk_key=track or label them)"
            )
        return keys
    keys = train_set.track_indices
    if np.bincount(keys).max() < 2:
        raise CrossmodalError(
            "--data.sampler pk with pk_key=track needs tracks with several clips, but every "
            "track has one clip; use pk_key=label"
        )
    return keys


def epoch_batches(
    cfg: TrainConfig, keys: np.ndarray, epoch: int, rank: int, world: int
) -> list[list[int]]:
    """This rank's batches (lists of item indices) of one epoch, a function of (seed,
    epoch) only: shuffled full batches, or P×K batches by ``keys`` with ``sampler=pk``.

    Every rank gets the same number of batches, cut to a multiple of
    ``optim.accum_steps``; the global batch ``i`` of the single-process order is split
    over the ranks as its consecutive parts (rank 0 first), so ``world`` ranks with
    ``batch_size`` each see, gathered, the batches one process with ``world ×
    batch_size`` would see.
    """
    size = cfg.batch_size
    if cfg.data.sampler == "pk":
        from crossmodal.sampling.pk_sampler import PKSampler

        k = cfg.data.pk_per_class
        if size % k:
            raise CrossmodalError(
                f"--batch_size {size} is not a multiple of --data.pk_per_class {k}"
            )
        try:
            sampler = PKSampler(
                keys, p=size // k, k=k, seed=cfg.seed, num_replicas=world, rank=rank
            )
        except ValueError as err:
            raise CrossmodalError(
                f"P×K sampling by {cfg.data.pk_key}: {err}; lower --batch_size or raise "
                "--data.pk_per_class"
            ) from err
        sampler.set_epoch(epoch)
        batches = [list(map(int, b)) for b in sampler]
    else:
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(keys))
        n_batches = len(order) // (size * world)
        if n_batches == 0:
            raise CrossmodalError(
                f"{len(order)} training clips make no full batch of {size}"
                f"{f' × {world} ranks' if world > 1 else ''}: lower --batch_size"
            )
        # Global batch i holds order[i·world·size : (i+1)·world·size]; rank r its r-th part.
        chosen = order[: n_batches * size * world].reshape(n_batches, world, size)
        batches = [list(map(int, b)) for b in chosen[:, rank]]
    accum = cfg.optim.accum_steps
    usable = len(batches) // accum * accum
    if usable == 0:
        raise CrossmodalError(
            f"an epoch has {len(batches)} batches, fewer than --optim.accum_steps {accum}"
        )
    return batches[:usable]


def build_optimizer(
    cfg: TrainConfig, modules: list[nn.Module], lr_factor: Callable[[int], float]
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (weight decay on matrices only) with the learning rate ``optim.lr ·
    lr_factor(step)`` (the run's :class:`~crossmodal.training.budget.Budget`)."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in modules:
        for param in module.parameters():
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (decay if param.ndim >= 2 else no_decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.optim.lr,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    return optimizer, scheduler
