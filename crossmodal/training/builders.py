"""Builders that turn a :class:`TrainConfig` into the objects the trainer composes:
datasets, per-epoch batch lists, the objective and the optimiser."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossmodal.errors import CrossmodalError
from crossmodal.training.config import TrainConfig
from crossmodal.training.schedule import warmup_cosine

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/crossmodal/features`` (``~/.cache/crossmodal/features``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crossmodal" / "features"


def check_media_exist(records: list) -> None:
    """One error listing every clip whose video or music file is missing."""
    missing = []
    for record in records:
        for path in {record.video, record.music}:
            if not Path(path).is_file():
                missing.append(f"  {record.id}: {path}")
    if missing:
        shown = "\n".join(missing[:50])
        more = f"\n  … and {len(missing) - 50} more" if len(missing) > 50 else ""
        raise CrossmodalError(
            f"{len(missing)} media file(s) of the manifest are missing:\n{shown}{more}"
        )


def build_datasets(cfg: TrainConfig, video_spec, audio_spec):
    """(train, val or None) :class:`~crossmodal.data.PairedClipDataset` of the manifest."""
    from crossmodal.data import PairedClipDataset, read_manifest

    if not cfg.data.manifest:
        raise CrossmodalError("no training data: pass --data MANIFEST.jsonl or a folder of videos")
    records = read_manifest(cfg.data.manifest)
    cache = cfg.data.cache_dir or default_cache_dir()
    splits = {r.split for r in records}
    train_records = [r for r in records if r.split == cfg.data.train_split]
    if not train_records:
        raise CrossmodalError(
            f"the {cfg.data.train_split!r} split of {cfg.data.manifest} is empty "
            f"(splits present: {sorted(s for s in splits if s) or 'none'})"
        )
    val_records = [r for r in records if r.split == cfg.data.val_split]
    check_media_exist(train_records + val_records)
    common = dict(cache=cache, on_error=cfg.data.on_error)
    train = PairedClipDataset(
        train_records,
        video_spec,
        audio_spec,
        train=True,
        jitter=cfg.data.jitter,
        labels=sorted({r.label for r in records if r.label is not None}),
        **common,
    )
    val = None
    if val_records:
        if cfg.data.val_max_clips:
            val_records = val_records[: cfg.data.val_max_clips]
        val = PairedClipDataset(
            val_records, video_spec, audio_spec, train=False, labels=train.labels, **common
        )
    else:
        log.warning("no %r split: training without validation", cfg.data.val_split)
    return train, val


def match_keys(dataset, match_key: str) -> np.ndarray:
    """The per-item key the loss matches on: track index or label index."""
    keys = dataset.track_indices if match_key == "track" else dataset.label_indices
    if match_key == "label" and (keys < 0).any():
        raise CrossmodalError("match_key=label needs a label on every training clip")
    return keys


def epoch_batches(
    cfg: TrainConfig, keys: np.ndarray, epoch: int, rank: int, world: int
) -> list[list[int]]:
    """This rank's batches (lists of item indices) of one epoch, deterministic in
    (seed, epoch): shuffled full batches, or P×K batches with ``sampler=pk``."""
    if cfg.data.sampler == "pk":
        from crossmodal.samplers import PKSampler

        k = cfg.data.pk_per_class
        if cfg.batch_size % k:
            raise CrossmodalError(
                f"batch_size {cfg.batch_size} is not a multiple of pk_per_class {k}"
            )
        sampler = PKSampler(
            keys, p=cfg.batch_size // k, k=k, seed=cfg.seed, num_replicas=world, rank=rank
        )
        sampler.set_epoch(epoch)
        return [list(map(int, b)) for b in sampler.batches()]
    rng = np.random.default_rng([cfg.seed, epoch])
    order = rng.permutation(len(keys))
    n_batches = len(order) // (cfg.batch_size * world)
    if n_batches == 0:
        raise CrossmodalError(
            f"{len(order)} training clips make no full batch of {cfg.batch_size}"
            f"{f' × {world} ranks' if world > 1 else ''}: lower --batch_size"
        )
    batches = order[: n_batches * cfg.batch_size * world].reshape(n_batches * world, cfg.batch_size)
    return [list(map(int, b)) for b in batches[rank::world]]


def build_objective(cfg: TrainConfig, num_keys: int, embed_dim: int) -> nn.Module:
    """The weighted sum of the configured loss terms, called as
    ``objective(video_emb, keys, music_emb, keys)``."""
    from crossmodal.losses import (
        SymmetricLoss,
        WeightedSum,
        create_loss,
        is_proxy_loss,
        list_losses,
    )
    from crossmodal.memory import CrossBatchMemory

    if not cfg.losses:
        raise CrossmodalError("the objective has no loss terms")
    terms: dict[str, nn.Module] = {}
    weights: dict[str, float] = {}
    for term in cfg.losses:
        if term.name not in list_losses():
            raise CrossmodalError(
                f"unknown loss {term.name!r}; choose from {', '.join(list_losses())}"
            )
        params = dict(term.params)
        proxy = is_proxy_loss(term.name)
        if proxy:
            params.setdefault("num_classes", num_keys)
            params.setdefault("embedding_dim", embed_dim)
        miner = None
        if term.miner is not None:
            from crossmodal.miners import create_miner

            miner = create_miner(term.miner, **term.miner_params)
        try:
            if cfg.memory_size > 0 and not proxy:
                base = create_loss(term.name, miner=miner, **params)
                wrap = lambda loss: CrossBatchMemory(  # noqa: E731
                    loss, embed_dim, memory_size=cfg.memory_size, warmup_iters=cfg.memory_warmup
                )
                loss = (
                    SymmetricLoss(wrap(base), wrap(copy.deepcopy(base)))
                    if term.symmetric
                    else wrap(base)
                )
            else:
                loss = create_loss(term.name, symmetric=term.symmetric, miner=miner, **params)
        except (TypeError, ValueError) as err:
            raise CrossmodalError(f"loss {term.name!r}: {err}") from err
        name = term.name
        suffix = 2
        while name in terms:
            name, suffix = f"{term.name}_{suffix}", suffix + 1
        terms[name] = loss
        weights[name] = term.weight
    return WeightedSum(terms, weights)


def build_optimizer(
    cfg: TrainConfig, modules: list[nn.Module], total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (weight decay on matrices only) with warm-up + cosine decay."""
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
    warmup = round(cfg.optim.warmup_fraction * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup, cfg.optim.min_lr_ratio)
    )
    return optimizer, scheduler
