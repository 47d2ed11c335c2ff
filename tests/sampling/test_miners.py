"""Miners on hand-placed embeddings with known answers, against naive per-anchor loops,
and against pytorch-metric-learning where it has the same miner."""

from __future__ import annotations

import math

import pytest
import torch

from crossmodal.losses import TripletMarginLoss, create_loss
from crossmodal.registry import BadArgumentsError, UnknownNameError
from crossmodal.sampling.miners import (
    BatchHardMiner,
    DistanceWeightedMiner,
    MultiSimilarityMiner,
    SemiHardMiner,
    create_miner,
    list_miners,
)

DT = torch.float64


def on_circle(degrees: list[float]) -> torch.Tensor:
    rad = torch.tensor(degrees, dtype=DT) * math.pi / 180
    return torch.stack([torch.cos(rad), torch.sin(rad)], dim=1)


# Anchor at 0°; positives at 10° and 40°; negatives at 20°, 90°, 180°.
ANGLES = [0.0, 10.0, 40.0, 20.0, 90.0, 180.0]
LABELS = torch.tensor([0, 0, 0, 1, 2, 3])


def row(mask: torch.Tensor, i: int = 0) -> set[float]:
    return {ANGLES[j] for j in torch.nonzero(mask[i]).flatten().tolist()}


def test_batch_hard_on_hand_placed_points() -> None:
    pos, neg = BatchHardMiner()(on_circle(ANGLES), LABELS)
    assert row(pos) == {40.0}  # farthest positive
    assert row(neg) == {20.0}  # nearest negative
    # Label 3 (180°) has no positive: nothing is kept for it.
    assert not pos[5].any()
    assert not neg[5].any()


def test_semi_hard_on_hand_placed_points() -> None:
    # Chord lengths: d(40°) = 0.684, d(20°) = 0.347, d(90°) = 1.414, d(180°) = 2.
    pos, neg = SemiHardMiner(margin=0.8)(on_circle(ANGLES), LABELS)
    assert row(pos) == {40.0}
    assert row(neg) == {90.0}  # 0.684 < 1.414 < 1.484; 20° is hard, 180° is easy
    pos, neg = SemiHardMiner(margin=0.5)(on_circle(ANGLES), LABELS)
    assert not pos[0].any()  # no negative inside (0.684, 1.184): the anchor keeps nothing
    assert not neg[0].any()


def test_multi_similarity_miner_on_hand_placed_points() -> None:
    # cos: positives 0.985 (10°), 0.766 (40°); negatives 0.940 (20°), 0 (90°), -1 (180°).
    pos, neg = MultiSimilarityMiner(epsilon=0.1)(on_circle(ANGLES), LABELS)
    assert row(neg) == {20.0}  # 0.94 + 0.1 > 0.766; 0 + 0.1 is not
    assert row(pos) == {10.0, 40.0}  # both below 0.94 + 0.1
    pos, neg = MultiSimilarityMiner(epsilon=0.0)(on_circle(ANGLES), LABELS)
    assert row(pos) == {40.0}  # only 0.766 < 0.94
    assert row(neg) == {20.0}


def naive_masks(name: str, q, lq, r, lr, **kw):
    """Per-anchor loops straight from each miner's definition."""
    qn, rn = q / q.norm(dim=1, keepdim=True), r / r.norm(dim=1, keepdim=True)
    pos = torch.zeros(len(lq), len(lr), dtype=torch.bool)
    neg = torch.zeros_like(pos)
    for i in range(len(lq)):
        p_idx = [j for j in range(len(lr)) if lr[j] == lq[i]]
        n_idx = [j for j in range(len(lr)) if lr[j] != lq[i]]
        d = {j: float((qn[i] - rn[j]).norm()) for j in range(len(lr))}
        s = {j: float(qn[i] @ rn[j]) for j in range(len(lr))}
        if not p_idx or not n_idx:
            continue
        if name == "batch_hard":
            pos[i, max(p_idx, key=lambda j: d[j])] = True
            neg[i, min(n_idx, key=lambda j: d[j])] = True
        elif name == "semi_hard":
            p = max(p_idx, key=lambda j: d[j])
            semi = [n for n in n_idx if d[p] < d[n] < d[p] + kw["margin"]]
            if semi:
                pos[i, p] = True
                neg[i, semi] = True
        elif name == "multi_similarity":
            min_pos, max_neg = min(s[j] for j in p_idx), max(s[j] for j in n_idx)
            neg[i, [n for n in n_idx if s[n] + kw["epsilon"] > min_pos]] = True
            pos[i, [p for p in p_idx if s[p] - kw["epsilon"] < max_neg]] = True
    return pos, neg


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("batch_hard", {}), ("semi_hard", {"margin": 0.3}), ("multi_similarity", {"epsilon": 0.1})],
)
def test_miners_match_naive_loops_cross_modal(name, kwargs) -> None:
    gen = torch.Generator().manual_seed(0)
    q, r = torch.randn(30, 5, generator=gen, dtype=DT), torch.randn(40, 5, generator=gen, dtype=DT)
    lq, lr = torch.randint(0, 6, (30,), generator=gen), torch.randint(0, 7, (40,), generator=gen)
    pos, neg = create_miner(name, **kwargs)(q, lq, r, lr)
    exp_pos, exp_neg = naive_masks(name, q, lq, r, lr, **kwargs)
    assert torch.equal(pos, exp_pos)
    assert torch.equal(neg, exp_neg)
    assert exp_neg.any()


def test_miners_return_subsets_of_label_masks_without_gradients() -> None:
    gen = torch.Generator().manual_seed(1)
    emb = torch.randn(20, 4, generator=gen, requires_grad=True)
    labels = torch.randint(0, 4, (20,), generator=gen)
    for name in list_miners():
        pos, neg = create_miner(name)(emb, labels)
        assert pos.dtype == torch.bool
        assert pos.shape == (20, 20)
        assert not pos.requires_grad
        same = labels[:, None] == labels[None, :]
        assert not (pos & ~same).any()
        assert not (neg & same).any()
        assert not pos.diagonal().any()


def test_batch_hard_triplet_loss_equals_the_batch_hard_formula() -> None:
    gen = torch.Generator().manual_seed(2)
    emb = torch.randn(16, 4, generator=gen, dtype=DT)
    labels = torch.arange(4).repeat(4)
    margin = 0.5
    loss = TripletMarginLoss(margin=margin, miner=BatchHardMiner())(emb, labels)
    e = emb / emb.norm(dim=1, keepdim=True)
    terms = []
    for a in range(16):
        d = (e[a] - e).norm(dim=1)
        hardest_pos = max(float(d[p]) for p in range(16) if p != a and labels[p] == labels[a])
        hardest_neg = min(float(d[n]) for n in range(16) if labels[n] != labels[a])
        if hardest_pos - hardest_neg + margin > 0:
            terms.append(hardest_pos - hardest_neg + margin)
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)
    # Same value through explicit masks.
    masks = BatchHardMiner()(emb, labels)
    assert TripletMarginLoss(margin=margin)(emb, labels, miner_masks=masks).item() == loss.item()
    assert create_loss("triplet_margin", margin=margin, miner="batch_hard")(emb, labels) == loss


def unit_at_distance(d: float) -> list[float]:
    """A unit vector in R^4 at Euclidean distance d from e1."""
    c = 1 - d * d / 2
    return [c, math.sqrt(1 - c * c), 0.0, 0.0]


def test_distance_weighted_sampling_follows_inverse_density() -> None:
    n_anchors, dim = 4000, 4
    neg_d = [0.3, 0.8, 1.2, 1.5]  # 0.3 is clipped to 0.5; 1.5 ≥ 1.4 is never drawn
    refs = torch.tensor([[0.0, 0.0, 1.0, 0.0]] + [unit_at_distance(d) for d in neg_d], dtype=DT)
    ref_labels = torch.tensor([0, 1, 2, 3, 4])
    anchors = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=DT).repeat(n_anchors, 1)
    labels = torch.zeros(n_anchors, dtype=torch.long)
    miner = DistanceWeightedMiner(generator=torch.Generator().manual_seed(3))
    pos, neg = miner(anchors, labels, refs, ref_labels)
    assert pos[:, 0].all()
    assert (neg.sum(1) == 1).all()  # one positive → one negative per anchor
    assert not neg[:, 4].any()

    def weight(d: float) -> float:
        d = max(d, 0.5)
        return d ** (2 - dim) * (1 - d * d / 4) ** ((3 - dim) / 2)

    w = torch.tensor([weight(d) for d in neg_d[:3]], dtype=DT)
    expected = w / w.sum()
    observed = neg[:, 1:4].sum(0).to(DT) / n_anchors
    bound = 4 * torch.sqrt(expected * (1 - expected) / n_anchors)
    assert ((observed - expected).abs() < bound).all(), (observed, expected)


def test_distance_weighted_keeps_positives_and_draws_as_many_negatives() -> None:
    gen = torch.Generator().manual_seed(4)
    emb = torch.randn(24, 16, generator=gen)
    labels = torch.arange(6).repeat(4)
    pos, neg = DistanceWeightedMiner(generator=torch.Generator().manual_seed(5))(emb, labels)
    same = labels[:, None] == labels[None, :]
    assert torch.equal(pos, same & ~torch.eye(24, dtype=torch.bool))
    assert ((neg.sum(1) >= 1) & (neg.sum(1) <= 3)).all()
    no_pos = DistanceWeightedMiner()(emb, torch.arange(24))
    assert not no_pos[0].any()
    assert not no_pos[1].any()


def test_miner_argument_errors() -> None:
    # One error type per failure for every registry (crossmodal.registry).
    with pytest.raises(UnknownNameError, match="unknown miner"):
        create_miner("hardest")
    with pytest.raises(BadArgumentsError, match="bad arguments for miner 'semi_hard'"):
        create_miner("semi_hard", eps=1)
    with pytest.raises(ValueError, match="margin must be > 0"):
        SemiHardMiner(margin=0)
    with pytest.raises(ValueError, match="cutoff"):
        DistanceWeightedMiner(cutoff=1.5)
    with pytest.raises(ValueError, match="NaN"):
        BatchHardMiner()(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))


@pytest.fixture
def pml_miners():
    return pytest.importorskip("pytorch_metric_learning.miners")


class TestPMLParity:
    def data(self):
        gen = torch.Generator().manual_seed(6)
        q, r = (
            torch.randn(20, 6, generator=gen, dtype=DT),
            torch.randn(24, 6, generator=gen, dtype=DT),
        )
        lq, lr = (
            torch.randint(0, 5, (20,), generator=gen),
            torch.randint(0, 5, (24,), generator=gen),
        )
        return q, lq, r, lr

    @staticmethod
    def to_mask(rows, cols, shape) -> torch.Tensor:
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[rows, cols] = True
        return mask

    def test_multi_similarity_miner(self, pml_miners) -> None:
        q, lq, r, lr = self.data()
        a1, p, a2, n = pml_miners.MultiSimilarityMiner(epsilon=0.1)(q, lq, r, lr.clone())
        pos, neg = MultiSimilarityMiner(epsilon=0.1)(q, lq, r, lr)
        assert torch.equal(pos, self.to_mask(a1, p, pos.shape))
        assert torch.equal(neg, self.to_mask(a2, n, neg.shape))

    def test_batch_hard_miner(self, pml_miners) -> None:
        q, lq, r, lr = self.data()
        a, p, n = pml_miners.BatchHardMiner()(q, lq, r, lr.clone())
        pos, neg = BatchHardMiner()(q, lq, r, lr)
        assert torch.equal(pos, self.to_mask(a, p, pos.shape))
        assert torch.equal(neg, self.to_mask(a, n, neg.shape))

    def test_semi_hard_is_pmls_semihard_set_when_one_positive_per_anchor(self, pml_miners) -> None:
        """PML's TripletMarginMiner("semihard") keeps every semi-hard (a, p, n) triplet; our
        masks use each anchor's hardest positive. With one positive per anchor the triplet
        sets coincide."""
        gen = torch.Generator().manual_seed(7)
        q, r = (
            torch.randn(15, 6, generator=gen, dtype=DT),
            torch.randn(15, 6, generator=gen, dtype=DT),
        )
        labels = torch.arange(15)
        a, p, n = pml_miners.TripletMarginMiner(margin=0.4, type_of_triplets="semihard")(
            q, labels, r, labels.clone()
        )
        pos, neg = SemiHardMiner(margin=0.4)(q, labels, r, labels)
        ours = {
            (i, j, k)
            for i, j in pos.nonzero().tolist()
            for k in neg[i].nonzero().flatten().tolist()
        }
        assert ours == set(zip(a.tolist(), p.tolist(), n.tolist(), strict=True))
        assert ours
