"""Class-balanced P×K batch sampling, seedable and rank-aware."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Sampler


class PKSampler(Sampler[list[int]]):
    """Batches of ``p`` distinct classes × ``k`` items each, for ``DataLoader(batch_sampler=…)``.

    Each epoch every class's items are shuffled and cut into chunks of ``k``; chunks are
    spread over the batches so that no batch holds two chunks of one class, and batches
    come out in random order. Guarantees, per epoch:

    * every batch has exactly ``p × k`` indices: ``p`` distinct classes, ``k`` per class,
      items of one class contiguous;
    * every item of every kept class appears at least once across the epoch's batches
      (of all ranks). It appears exactly once unless (a) its class size is not a multiple
      of ``k``: the last chunk is completed with other items of the class; (b) a batch is
      short of classes at the end of the epoch (when class sizes are unbalanced or the
      chunk count is not a multiple of ``p``): it is completed with chunks of other
      classes, repeating items; (c) under DDP the batch count is not a multiple of
      ``num_replicas``: extra batches of random classes fill the last round.
    * Classes with fewer than ``k`` items: ``small_classes="replace"`` (default) samples
      their chunk with replacement (items repeat inside the chunk); ``"drop"`` leaves them
      out.

    The epoch's batches are a function of ``(seed, epoch)`` only (call :meth:`set_epoch`
    each epoch). With ``num_replicas`` > 1, all ranks build the same list and rank ``r``
    takes batches ``r, r + num_replicas, …``, so ranks get disjoint batches and the same
    number of them (``len(sampler)``). ``num_replicas``/``rank`` default to the
    ``torch.distributed`` world when it is initialised, else 1/0.

    The number of batches per epoch is ``max(ceil(C / p), max_c C_c)`` where ``C_c`` is
    class c's chunk count and ``C = Σ C_c``, then rounded up to a multiple of
    ``num_replicas``.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        p: int,
        k: int,
        *,
        seed: int = 0,
        small_classes: Literal["replace", "drop"] = "replace",
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
        if p < 1 or k < 1:
            raise ValueError(f"p and k must be >= 1, got p={p}, k={k}")
        if small_classes not in ("replace", "drop"):
            raise ValueError(f"small_classes must be 'replace' or 'drop', got {small_classes!r}")
        if num_replicas is None or rank is None:
            dist = torch.distributed
            initialised = dist.is_available() and dist.is_initialized()
            num_replicas = num_replicas or (dist.get_world_size() if initialised else 1)
            rank = rank if rank is not None else (dist.get_rank() if initialised else 0)
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, {num_replicas}")
        _, inverse = np.unique(labels, return_inverse=True)
        groups = [np.flatnonzero(inverse == c) for c in range(inverse.max(initial=-1) + 1)]
        if small_classes == "drop":
            groups = [g for g in groups if len(g) >= k]
        if len(groups) < p:
            raise ValueError(
                f"a P×K batch needs p={p} distinct classes but only {len(groups)} are "
                f"available (labels has {len(set(labels.tolist()))} classes"
                + (
                    f"; {small_classes=} dropped those with fewer than k={k} items)"
                    if small_classes == "drop"
                    else ")"
                )
            )
        self.p, self.k = p, k
        self.seed = seed
        self.epoch = 0
        self.num_replicas, self.rank = num_replicas, rank
        self.small_classes = small_classes
        self._groups = groups
        chunks = [math.ceil(len(g) / k) for g in groups]
        self._num_batches = max(math.ceil(sum(chunks) / p), max(chunks))
        self._num_global = math.ceil(self._num_batches / num_replicas) * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches :meth:`__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self._num_global // self.num_replicas

    def _chunk(self, rng: np.random.Generator, items: np.ndarray) -> np.ndarray:
        """``k`` random items of one class (without replacement when it has ``k``)."""
        return rng.choice(items, self.k, replace=len(items) < self.k)

    def _class_chunks(self, rng: np.random.Generator, items: np.ndarray) -> list[np.ndarray]:
        if len(items) < self.k:
            return [self._chunk(rng, items)]
        order = rng.permutation(items)
        chunks = [order[i : i + self.k] for i in range(0, len(order), self.k)]
        short = self.k - len(chunks[-1])
        if short:
            rest = np.setdiff1d(items, chunks[-1])
            chunks[-1] = np.concatenate([chunks[-1], rng.choice(rest, short, replace=False)])
        return chunks

    def _complete(
        self, rng: np.random.Generator, batch: list[tuple[int, np.ndarray]]
    ) -> list[tuple[int, np.ndarray]]:
        """Add chunks of classes not in ``batch`` until it has ``p`` classes."""
        present = {c for c, _ in batch}
        absent = np.array([c for c in range(len(self._groups)) if c not in present])
        extra = rng.choice(absent, self.p - len(batch), replace=False)
        return batch + [(int(c), self._chunk(rng, self._groups[c])) for c in extra]

    def batches(self) -> list[list[int]]:
        """All ranks' batches of the current epoch, in order (rank r takes r::num_replicas)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        layout: list[tuple[int, np.ndarray]] = []
        for c in rng.permutation(len(self._groups)):
            layout.extend((int(c), chunk) for chunk in self._class_chunks(rng, self._groups[c]))
        # Round-robin over the class-grouped layout: a class has at most _num_batches
        # consecutive chunks, so they land in distinct batches.
        slots: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(self._num_batches)]
        for position, chunk in enumerate(layout):
            slots[position % self._num_batches].append(chunk)
        slots += [[] for _ in range(self._num_global - self._num_batches)]
        batches = []
        for slot in slots:
            full = self._complete(rng, slot) if len(slot) < self.p else slot
            order = rng.permutation(len(full))
            batches.append([int(i) for j in order for i in full[j][1]])
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.rank :: self.num_replicas]
