"""PKSampler invariants: P×K composition, coverage, determinism, epochs, ranks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from crossmodal.sampling.pk_sampler import PKSampler


def check_pk(batches: list[list[int]], labels: np.ndarray, p: int, k: int) -> None:
    for batch in batches:
        assert len(batch) == p * k
        counts = Counter(labels[batch].tolist())
        assert len(counts) == p
        assert set(counts.values()) == {k}
        # Items of one class are contiguous.
        runs = [labels[batch[i]] for i in range(0, p * k, k)]
        assert all((labels[batch[i : i + k]] == runs[i // k]).all() for i in range(0, p * k, k))


def test_balanced_classes_cover_every_item_exactly_once() -> None:
    labels = np.repeat(np.arange(12), 4)  # 12 classes × 4 items, P=3, K=4 → 4 batches
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    sampler = PKSampler(labels, p=3, k=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4
    check_pk(batches, labels, 3, 4)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(labels)))


def test_unbalanced_classes_cover_every_item_at_least_once() -> None:
    sizes = [4, 4, 5, 6, 2, 13, 4, 3, 8]
    labels = np.repeat(np.arange(len(sizes)), sizes)
    for p, k in [(3, 4), (2, 2), (4, 3)]:
        sampler = PKSampler(labels, p=p, k=k, seed=2)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            batches = list(sampler)
            check_pk(batches, labels, p, k)
            assert set(i for b in batches for i in b) == set(range(len(labels)))
            chunks = [-(-max(s, k) // k) if s >= k else 1 for s in sizes]
            assert len(batches) == max(-(-sum(chunks) // p), max(chunks))


def test_small_classes_replace_or_drop() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 3, 3, 3])  # class 2 has one item, K=3
    replaced = [b for e in range(4) for b in (PKSampler(labels, 2, 3, seed=e))]
    check_pk(replaced, labels, 2, 3)
    with_class_2 = [b for b in replaced if 6 in b]
    assert with_class_2
    assert all(b.count(6) == 3 for b in with_class_2)  # sampled with replacement
    dropped = list(PKSampler(labels, 2, 3, small_classes="drop"))
    check_pk(dropped, labels, 2, 3)
    assert all(6 not in b for b in dropped)


def test_seed_and_epoch_determinism() -> None:
    labels = np.repeat(np.arange(10), 5)
    a, b = PKSampler(labels, 2, 5, seed=3), PKSampler(labels, 2, 5, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(PKSampler(labels, 2, 5, seed=4)) != first


def test_ranks_get_disjoint_batches_of_equal_count() -> None:
    labels = np.repeat(np.arange(14), 4)  # 14 chunks, P=2 → 7 batches, padded to 8 for 2 ranks
    world = [PKSampler(labels, 2, 4, seed=5, num_replicas=2, rank=r) for r in range(2)]
    for epoch in (0, 1):
        for s in world:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in world]
        assert len(per_rank[0]) == len(per_rank[1]) == len(world[0]) == 4
        all_batches = world[0].batches()
        assert per_rank[0] + per_rank[1] != all_batches  # interleaved, not split in halves
        assert sorted(map(tuple, per_rank[0] + per_rank[1])) == sorted(map(tuple, all_batches))
        assert set(i for b in per_rank[0] + per_rank[1] for i in b) == set(range(len(labels)))
        for b in per_rank[0] + per_rank[1]:
            assert len(b) == 8


def test_with_a_dataloader() -> None:
    labels = torch.arange(6).repeat_interleave(4)
    data = TensorDataset(torch.arange(24), labels)
    loader = DataLoader(data, batch_sampler=PKSampler(labels, p=3, k=2, seed=0))
    seen = [batch for batch in loader]
    assert len(seen) == len(loader) == 4
    for idx, lab in seen:
        assert torch.equal(lab, labels[idx])
        assert len(set(lab.tolist())) == 3


def test_bad_arguments() -> None:
    labels = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="needs p=3 distinct classes but only 2"):
        PKSampler(labels, 3, 2)
    with pytest.raises(ValueError, match="dropped"):
        PKSampler(np.array([0, 0, 1, 2]), 2, 2, small_classes="drop")
    with pytest.raises(ValueError, match="1-D"):
        PKSampler(np.zeros((2, 2)), 1, 1)
    with pytest.raises(ValueError, match="rank"):
        PKSampler(labels, 2, 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="small_classes"):
        PKSampler(labels, 2, 2, small_classes="pad")  # type: ignore[arg-type]
