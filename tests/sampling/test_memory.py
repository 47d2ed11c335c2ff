"""CrossBatchMemory against a naive queue and a naive InfoNCE over explicit candidates."""

from __future__ import annotations

import math

import pytest
import torch

from crossmodal.losses import ArcFaceLoss, ContrastiveLoss, InfoNCELoss, TripletMarginLoss
from crossmodal.sampling.memory import CrossBatchMemory
from crossmodal.sampling.miners import BatchHardMiner, MultiSimilarityMiner

DT = torch.float64
TAU = 0.2


def naive_info_nce(q, lq, candidates: list[list[tuple[torch.Tensor, int]]]) -> torch.Tensor:
    """InfoNCE with, for each anchor, an explicit list of (reference, label) candidates."""
    losses = []
    for i in range(len(lq)):
        cos = [(q[i] / q[i].norm()) @ (r / r.norm()) / TAU for r, _ in candidates[i]]
        pos = [c for c, (_, lab) in zip(cos, candidates[i], strict=True) if lab == int(lq[i])]
        if not pos:
            continue
        log_denominator = torch.log(sum(torch.exp(c) for c in cos))
        losses.append(-torch.stack([c - log_denominator for c in pos]).mean())
    return torch.stack(losses).mean()


def batches(n: int, size: int = 4, dim: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield (
            torch.randn(size, dim, generator=gen, dtype=DT),
            torch.randint(0, 3, (size,), generator=gen),
            torch.randn(size, dim, generator=gen, dtype=DT),
            torch.randint(0, 3, (size,), generator=gen),
        )


@pytest.mark.parametrize("crossmodal", [False, True], ids=["unimodal", "crossmodal"])
def test_memory_matches_a_naive_queue(crossmodal: bool) -> None:
    memory_size, warmup = 10, 2
    xbm = CrossBatchMemory(
        InfoNCELoss(temperature=TAU, learnable=False), 3, memory_size, warmup
    ).double()
    queue: list[tuple[torch.Tensor, int]] = []
    for step, (q, lq, r, lr) in enumerate(batches(7)):
        refs = list(zip(r, lr.tolist(), strict=True)) if crossmodal else None
        value = xbm(q, lq, r, lr) if crossmodal else xbm(q, lq)
        used = queue if step >= warmup else []
        candidates = []
        for i in range(len(lq)):
            current = refs if crossmodal else [(q[j], int(lq[j])) for j in range(len(lq)) if j != i]
            candidates.append(current + used)
        torch.testing.assert_close(value, naive_info_nce(q, lq, candidates), rtol=1e-10, atol=0)
        queue = (queue + (refs if crossmodal else list(zip(q, lq.tolist(), strict=True))))[
            -memory_size:
        ]
        mem_emb, mem_labels = xbm.memory()
        assert torch.equal(mem_emb, torch.stack([e for e, _ in queue]))
        assert mem_labels.tolist() == [lab for _, lab in queue]


def test_gradients_flow_to_the_batch_only() -> None:
    xbm = CrossBatchMemory(ContrastiveLoss(), 3, memory_size=8)
    for q, lq, r, lr in batches(2):
        q, r = q.float().requires_grad_(True), r.float().requires_grad_(True)
        xbm(q, lq, r, lr).backward()
        assert q.grad is not None
        assert r.grad is not None
    assert not xbm.memory_emb.requires_grad


def test_eval_mode_uses_but_never_changes_the_memory() -> None:
    xbm = CrossBatchMemory(TripletMarginLoss(), 3, memory_size=8).double()
    data = list(batches(3))
    for q, lq, r, lr in data[:2]:
        xbm(q, lq, r, lr)
    before = xbm.memory()[0].clone()
    xbm.eval()
    q, lq, r, lr = data[2]
    with_memory = xbm(q, lq, r, lr)
    assert torch.equal(xbm.memory()[0], before)
    assert int(xbm.iteration) == 2
    assert with_memory.item() != TripletMarginLoss()(q, lq, r, lr).item()


def test_batch_larger_than_memory_keeps_its_last_rows() -> None:
    xbm = CrossBatchMemory(ContrastiveLoss(), 2, memory_size=3)
    emb = torch.arange(10, dtype=torch.float32).view(5, 2)
    xbm.enqueue(emb, torch.arange(5))
    mem_emb, mem_labels = xbm.memory()
    assert torch.equal(mem_emb, emb[2:])
    assert mem_labels.tolist() == [2, 3, 4]
    xbm.enqueue(emb[:2], torch.tensor([7, 8]))
    assert xbm.memory()[1].tolist() == [4, 7, 8]


def test_miner_mines_over_batch_and_memory() -> None:
    loss = TripletMarginLoss(margin=0.5, miner=BatchHardMiner())
    xbm = CrossBatchMemory(loss, 3, memory_size=16).double()
    data = list(batches(3, size=6))
    for q, lq, r, lr in data[:2]:
        xbm(q, lq, r, lr)
    q, lq, r, lr = data[2]
    mem_emb, mem_labels = xbm.memory()
    expected = loss(q, lq, torch.cat([r, mem_emb]), torch.cat([lr, mem_labels]))
    torch.testing.assert_close(xbm(q, lq, r, lr), expected)


@pytest.mark.parametrize("crossmodal", [False, True], ids=["unimodal", "crossmodal"])
def test_miner_masks_cover_the_batch_and_keep_every_memory_column(crossmodal: bool) -> None:
    loss = InfoNCELoss(temperature=TAU, learnable=False).double()
    xbm = CrossBatchMemory(loss, 3, memory_size=16).double()
    data = list(batches(3, size=6))
    for q, lq, r, lr in data[:2]:
        xbm(q, lq, r, lr) if crossmodal else xbm(q, lq)
    q, lq, r, lr = data[2]
    refs, ref_labels = (r, lr) if crossmodal else (q, lq)
    pos, neg = MultiSimilarityMiner(epsilon=0.4)(q, lq, *((r, lr) if crossmodal else ()))
    mem_emb, mem_labels = xbm.memory()
    xbm.eval()  # compare without enqueueing
    got = xbm(q, lq, *((r, lr) if crossmodal else ()), miner_masks=(pos, neg))
    # By hand: a naive InfoNCE over each anchor's explicit candidates.
    candidates = []
    for i in range(len(lq)):
        current = [
            (refs[j], int(ref_labels[j]))
            for j in range(len(ref_labels))
            if (pos[i, j] or neg[i, j]) and (crossmodal or j != i)
        ]
        candidates.append(current + list(zip(mem_emb, mem_labels.tolist(), strict=True)))
    torch.testing.assert_close(got, naive_info_nce(q, lq, candidates), rtol=1e-10, atol=0)
    with pytest.raises(ValueError, match="miner masks have shape"):
        xbm(q, lq, r, lr, miner_masks=(pos[:, :3], neg[:, :3]))


def test_state_dict_round_trip_and_reset() -> None:
    xbm = CrossBatchMemory(ContrastiveLoss(), 3, memory_size=6)
    for q, lq, r, lr in batches(2):
        xbm(q.float(), lq, r.float(), lr)
    restored = CrossBatchMemory(ContrastiveLoss(), 3, memory_size=6)
    restored.load_state_dict(xbm.state_dict())
    assert torch.equal(restored.memory()[0], xbm.memory()[0])
    assert int(restored.iteration) == 2
    restored.reset()
    assert restored.memory()[0].shape == (0, 3)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="pairwise loss"):
        CrossBatchMemory(ArcFaceLoss(3, 4), 4)
    with pytest.raises(ValueError, match="memory_size"):
        CrossBatchMemory(ContrastiveLoss(), 4, memory_size=0)
    xbm = CrossBatchMemory(ContrastiveLoss(), 4)
    with pytest.raises(ValueError, match="dim 3"):
        xbm.enqueue(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        xbm(torch.full((2, 4), math.nan), torch.tensor([0, 1]))
