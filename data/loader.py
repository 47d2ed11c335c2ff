"""DataLoader set-up for the clip datasets: per-worker seeding, pinning only on CUDA."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed.

    torch seeds every worker differently (base seed + worker id, the base drawn from the
    loader's generator each epoch); the datasets draw windows from torch's generator, and
    this makes any numpy or ``random`` use in workers follow the same seeding.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int | None = 1,
    *,
    shuffle: bool = False,
    sampler: Sampler | None = None,
    batch_sampler: Sampler | None = None,
    num_workers: int = 0,
    seed: int | None = None,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    prefetch_factor: int | None = None,
    **kwargs: Any,
) -> DataLoader:
    """A DataLoader with the project's defaults.

    ``seed`` fixes the loader's generator (shuffling and every worker's seed), so a run
    is repeatable for a given ``num_workers``. Workers persist across epochs (no
    re-spawn, caches stay warm). ``pin_memory`` defaults to whether CUDA is available.
    ``batch_sampler`` (e.g. a P×K sampler) replaces batch_size/shuffle/sampler.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if batch_sampler is not None:
        batching: dict[str, Any] = {"batch_sampler": batch_sampler}
    else:
        batching = {
            "batch_size": batch_size,
            "shuffle": shuffle,
            "sampler": sampler,
            "drop_last": drop_last,
        }
    return DataLoader(
        dataset,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        **batching,
        **kwargs,
    )
