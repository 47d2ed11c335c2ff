"""Randomness as a function of position: what makes a resumed run repeat the
uninterrupted one.

Nothing in a training run draws from a random stream whose state would have to be saved.
Each random choice is seeded from where it happens: a training item's window (and
jitter, SpecAugment) from ``(seed, epoch, item index)``, the model's dropout and any
randomised miner from ``(seed, rank, epoch, batch index)``. So the run depends only on
the seed, never on when it was interrupted, how many DataLoader workers decoded it, or,
for the data, on the rank that drew it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixing ``parts`` (numpy's SeedSequence hashing: nearby inputs give
    unrelated seeds)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def seed_torch(*parts: int) -> None:
    """Seed torch's global generator (CPU, and CUDA when initialised) from ``parts``."""
    torch.manual_seed(derive_seed(*parts))


class SeededItems(Dataset):
    """A view of a dataset whose items are ``(index, seed)`` pairs: the item is loaded
    with torch's generator seeded by ``seed``, then the caller's generator state is put
    back. Batches of such pairs go to a DataLoader as its ``batch_sampler``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]
