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
      (of all ranks). Items repeat only where the sizes force it: (a) a class whose size
      is not a multiple of ``k`` completes its last chunk with other items of the class;
      (b) when the chunk count is not a multiple of ``p``, or one class has more chunks
      than there are batches' worth of other classes, some batches get fewer than ``p``
      chunks and are completed with random chunks of classes they lack; (c) under DDP,
      when the batch count is not a multiple of ``num_replicas``, extra batches of random
      classes fill the last round.
    * Classes with fewer than ``k`` items: ``small_classes="replace"`` (default) samples
      their chunk with replacement (all their items, topped up with repeats); ``"drop"``
      leaves them out.

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
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        # Group indices by class in O(N log N): stable sort by class, split at the counts.
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.cumsum(counts)[:-1]) if len(labels) else []
        num_classes = len(groups)
        if small_classes == "drop":
            groups = [g for g in groups if len(g) >= k]
        if len(groups) < p:
            dropped = num_classes - len(groups)
            note = f"; {dropped} with fewer than k={k} items were dropped" if dropped else ""
            raise ValueError(
                f"a P×K batch needs p={p} distinct classes but only {len(groups)} are "
                f"available (labels has {num_classes} classes{note})"
            )
        self.p, self.k = p, k
        self.seed = seed
        self.epoch = 0
        self.num_replicas, self.rank = num_replicas, rank
        self.small_classes = small_classes
        # Items grouped by class (kept classes only), with each class's start and size.
        self._items = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
        self._sizes = np.array([len(g) for g in groups])
        self._starts = np.cumsum(self._sizes) - self._sizes
        self._item_class = np.repeat(np.arange(len(groups)), self._sizes)
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

    def _epoch_chunks(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(chunks (T, k), their classes (T,)): classes in random order, each class's items
        shuffled and cut into chunks of k, chunks of one class consecutive."""
        k, sizes = self.k, self._sizes
        class_order = rng.permutation(len(sizes))
        rank = np.empty_like(class_order)
        rank[class_order] = np.arange(len(class_order))
        items = self._items[np.lexsort((rng.random(len(self._items)), rank[self._item_class]))]
        sizes = sizes[class_order]
        starts = np.cumsum(sizes) - sizes
        padded = np.maximum(-(-sizes // k), 1) * k
        block = np.repeat(np.arange(len(sizes)), padded)
        offset = np.arange(padded.sum()) - np.repeat(np.cumsum(padded) - padded, padded)
        size = sizes[block]
        # A short last chunk is completed with the class's first items, which sit in full
        # chunks (so no repeat inside the chunk); a class smaller than k repeats at random.
        source = np.where(offset < size, offset, offset - size)
        tiny = (offset >= size) & (size < k)
        source[tiny] = rng.integers(0, size[tiny])
        chunks = items[starts[block] + source].reshape(-1, k)
        return chunks, class_order[block[::k]]

    def batches(self) -> list[list[int]]:
        """All ranks' batches of the current epoch, in order (rank r takes r::num_replicas)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        p, k = self.p, self.k
        chunks, chunk_class = self._epoch_chunks(rng)
        # Round-robin over the class-grouped chunks: a class has at most _num_batches
        # consecutive chunks, so they land in distinct batches.
        slot = np.arange(len(chunks)) % self._num_batches
        layout = np.full((self._num_global, p), -1)
        layout[slot, np.arange(len(chunks)) // self._num_batches] = np.arange(len(chunks))
        extra_chunks = []
        for b in np.flatnonzero(layout[:, -1] < 0):
            filled = int((layout[b] >= 0).sum())
            present = set(chunk_class[layout[b, :filled]].tolist())
            # Rejection sampling: cheap when classes are many, and ends since >= p exist.
            while len(present) < p:
                c = int(rng.integers(len(self._sizes)))
                if c not in present:
                    present.add(c)
                    start = self._starts[c]
                    extra_chunks.append(
                        self._chunk(rng, self._items[start : start + self._sizes[c]])
                    )
                    layout[b, filled] = len(chunks) + len(extra_chunks) - 1
                    filled += 1
        table = np.concatenate([chunks, *[c[None] for c in extra_chunks]])
        layout = np.take_along_axis(layout, rng.random(layout.shape).argsort(1), axis=1)
        layout = layout[rng.permutation(len(layout))]
        return table[layout].reshape(len(layout), p * k).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.rank :: self.num_replicas]
