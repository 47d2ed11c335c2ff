"""Each pairwise loss against a naive loop written from its paper's formula (float64).

The references loop over anchors, pairs and triplets with scalar torch ops (so autograd
gives their gradients too) and compute distances as ``‖q̂ − r̂‖``, independently of the
library's matmul form. They are checked unimodally (batch against itself, diagonal
excluded) and cross-modally (a reference set where labels repeat, a query label missing
from it, a reference label missing from the queries).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from crossmodal.losses import (
    CircleLoss,
    ContrastiveLoss,
    InfoNCELoss,
    LiftedStructureLoss,
    MultiSimilarityLoss,
    NPairLoss,
    TripletMarginLoss,
)

DT = torch.float64


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


class Setting:
    """Queries, references, and the naive pair relations of one call."""

    def __init__(self, q, lq, r=None, lr=None):
        self.q, self.lq = q, lq
        self.cross = r is not None
        self.r, self.lr = (r, lr) if self.cross else (q, lq)

    def refs(self, i: int) -> list[int]:
        return [j for j in range(len(self.lr)) if self.cross or j != i]

    def positives(self, i: int) -> list[int]:
        return [j for j in self.refs(i) if int(self.lq[i]) == int(self.lr[j])]

    def negatives(self, i: int) -> list[int]:
        return [j for j in self.refs(i) if int(self.lq[i]) != int(self.lr[j])]

    def cos(self, i: int, j: int) -> torch.Tensor:
        return unit(self.q[i]) @ unit(self.r[j])

    def dot(self, i: int, j: int) -> torch.Tensor:
        return self.q[i] @ self.r[j]

    def dist(self, i: int, j: int) -> torch.Tensor:
        return (unit(self.q[i]) - unit(self.r[j])).norm()

    def call(self, loss):
        if self.cross:
            return loss(self.q, self.lq, self.r, self.lr)
        return loss(self.q, self.lq)


def mean(terms: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.stack(terms).mean() if terms else like.sum() * 0


def naive_contrastive(s: Setting, pos_margin, neg_margin, power) -> torch.Tensor:
    pos_terms, neg_terms = [], []
    for i in range(len(s.lq)):
        for j in s.positives(i):
            t = torch.relu(s.dist(i, j) - pos_margin) ** power
            if t > 0:
                pos_terms.append(t)
        for j in s.negatives(i):
            t = torch.relu(neg_margin - s.dist(i, j)) ** power
            if t > 0:
                neg_terms.append(t)
    return mean(pos_terms, s.q) + mean(neg_terms, s.q)


def naive_triplet(s: Setting, margin, squared) -> torch.Tensor:
    terms = []
    for a in range(len(s.lq)):
        for p in s.positives(a):
            for n in s.negatives(a):
                dap, dan = s.dist(a, p), s.dist(a, n)
                if squared:
                    dap, dan = dap**2, dan**2
                t = torch.relu(dap - dan + margin)
                if t > 0:
                    terms.append(t)
    return mean(terms, s.q)


def naive_lifted(s: Setting, neg_margin, pos_margin) -> torch.Tensor:
    terms = []
    for i in range(len(s.lq)):
        for j in s.positives(i):
            exps = [torch.exp(neg_margin - s.dist(i, k)) for k in s.negatives(i)]
            # Negatives of reference j: the queries l with another label (l ≠ j unimodally).
            exps += [
                torch.exp(neg_margin - s.dist(m, j))
                for m in range(len(s.lq))
                if int(s.lq[m]) != int(s.lr[j]) and (s.cross or m != j)
            ]
            if not exps:
                continue
            big_j = torch.log(torch.stack(exps).sum()) + s.dist(i, j) - pos_margin
            terms.append(torch.relu(big_j) ** 2 / 2)
    return mean(terms, s.q)


def naive_npair(s: Setting, scale, reg_weight, normalize) -> torch.Tensor:
    sim = s.cos if normalize else s.dot
    anchors = []
    for i in range(len(s.lq)):
        pos = s.positives(i)
        if not pos:
            continue
        per_pos = []
        for p in pos:
            inner = sum(
                (torch.exp(scale * sim(i, n) - scale * sim(i, p)) for n in s.negatives(i)),
                torch.zeros((), dtype=DT),
            )
            per_pos.append(torch.log(1 + inner))
        anchors.append(torch.stack(per_pos).mean())
    loss = mean(anchors, s.q)
    q = F.normalize(s.q, dim=1) if normalize else s.q
    r = F.normalize(s.r, dim=1) if normalize else s.r
    sq = [(row**2).sum() for row in q]
    reg = torch.stack(sq).mean()
    if s.cross:
        reg = 0.5 * (reg + torch.stack([(row**2).sum() for row in r]).mean())
    return loss + reg_weight * reg


def naive_ms(s: Setting, alpha, beta, base) -> torch.Tensor:
    anchors = []
    for i in range(len(s.lq)):
        pos, neg = s.positives(i), s.negatives(i)
        if not pos and not neg:
            continue
        sp = sum((torch.exp(-alpha * (s.cos(i, p) - base)) for p in pos), torch.zeros((), dtype=DT))
        sn = sum((torch.exp(beta * (s.cos(i, n) - base)) for n in neg), torch.zeros((), dtype=DT))
        anchors.append(torch.log(1 + sp) / alpha + torch.log(1 + sn) / beta)
    return mean(anchors, s.q)


def naive_circle(s: Setting, m, gamma) -> torch.Tensor:
    anchors = []
    for i in range(len(s.lq)):
        pos, neg = s.positives(i), s.negatives(i)
        if not pos or not neg:
            continue
        total = torch.zeros((), dtype=DT)
        for n in neg:
            for p in pos:
                sn, sp = s.cos(i, n), s.cos(i, p)
                a_n = torch.relu(sn.detach() + m)
                a_p = torch.relu(1 + m - sp.detach())
                total = total + torch.exp(gamma * (a_n * (sn - m) - a_p * (sp - (1 - m))))
        anchors.append(torch.log(1 + total))
    return mean(anchors, s.q)


def naive_info_nce(s: Setting, temperature) -> torch.Tensor:
    anchors = []
    for i in range(len(s.lq)):
        pos = s.positives(i)
        if not pos:
            continue
        candidates = s.positives(i) + s.negatives(i)
        denom = sum(torch.exp(s.cos(i, j) / temperature) for j in candidates)
        anchors.append(
            -torch.stack(
                [torch.log(torch.exp(s.cos(i, p) / temperature) / denom) for p in pos]
            ).mean()
        )
    return mean(anchors, s.q)


CASES: list[tuple[str, Callable[[], torch.nn.Module], Callable[[Setting], torch.Tensor]]] = [
    (
        "contrastive_p2",
        lambda: ContrastiveLoss(pos_margin=0.1, neg_margin=1.2, power=2),
        lambda s: naive_contrastive(s, 0.1, 1.2, 2),
    ),
    (
        "contrastive_p1",
        lambda: ContrastiveLoss(pos_margin=0.0, neg_margin=1.5, power=1),
        lambda s: naive_contrastive(s, 0.0, 1.5, 1),
    ),
    ("triplet", lambda: TripletMarginLoss(margin=0.3), lambda s: naive_triplet(s, 0.3, False)),
    (
        "triplet_squared",
        lambda: TripletMarginLoss(margin=0.5, squared=True),
        lambda s: naive_triplet(s, 0.5, True),
    ),
    (
        "lifted",
        lambda: LiftedStructureLoss(neg_margin=1.0, pos_margin=0.1),
        lambda s: naive_lifted(s, 1.0, 0.1),
    ),
    (
        "npair_raw",
        lambda: NPairLoss(scale=1.0, reg_weight=0.01),
        lambda s: naive_npair(s, 1.0, 0.01, False),
    ),
    (
        "npair_cosine",
        lambda: NPairLoss(scale=8.0, reg_weight=0.0, normalize=True),
        lambda s: naive_npair(s, 8.0, 0.0, True),
    ),
    (
        "multi_similarity",
        lambda: MultiSimilarityLoss(alpha=2.0, beta=10.0, base=0.3),
        lambda s: naive_ms(s, 2.0, 10.0, 0.3),
    ),
    ("circle", lambda: CircleLoss(m=0.25, gamma=16.0), lambda s: naive_circle(s, 0.25, 16.0)),
    (
        "info_nce",
        lambda: InfoNCELoss(temperature=0.2, learnable=False),
        lambda s: naive_info_nce(s, 0.2),
    ),
]


def unimodal() -> Setting:
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(10, 5, generator=gen, dtype=DT)
    # Label 3 appears once: an anchor with no positive.
    lq = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 4, 4])
    return Setting(q, lq)


def crossmodal() -> Setting:
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(9, 5, generator=gen, dtype=DT)
    r = torch.randn(11, 5, generator=gen, dtype=DT)
    # Label 0 appears three times among the references; label 9 has no reference; label 7
    # is only a reference.
    lq = torch.tensor([0, 0, 1, 2, 2, 3, 9, 1, 4])
    lr = torch.tensor([0, 1, 0, 2, 3, 0, 4, 4, 7, 2, 1])
    return Setting(q, lq, r, lr)


def with_grad(s: Setting) -> Setting:
    q = s.q.clone().requires_grad_(True)
    if not s.cross:
        return Setting(q, s.lq)
    return Setting(q, s.lq, s.r.clone().requires_grad_(True), s.lr)


@pytest.mark.parametrize("setting", [unimodal, crossmodal], ids=["unimodal", "crossmodal"])
@pytest.mark.parametrize(("name", "make", "naive"), CASES, ids=[c[0] for c in CASES])
def test_value_and_gradient_match_the_naive_formula(setting, name, make, naive) -> None:
    ours_in, ref_in = with_grad(setting()), with_grad(setting())
    ours = ours_in.call(make())
    expected = naive(ref_in)
    assert expected.item() > 0, "the reference must exercise a non-trivial value"
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-12)
    ours.backward()
    expected.backward()
    torch.testing.assert_close(ours_in.q.grad, ref_in.q.grad, rtol=1e-7, atol=1e-10)
    if setting is crossmodal:
        torch.testing.assert_close(ours_in.r.grad, ref_in.r.grad, rtol=1e-7, atol=1e-10)


# Circle loss treats its weights α as constants (the paper's analysis and code), so its
# gradient is deliberately not the numerical derivative of its value; it is checked by
# test_circle_gradient_holds_weights_constant instead.
GRADCHECK_CASES = [c for c in CASES if c[0] != "circle"]


@pytest.mark.parametrize(
    ("name", "make", "naive"), GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES]
)
def test_gradcheck(name, make, naive) -> None:
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(6, 3, generator=gen, dtype=DT, requires_grad=True)
    r = torch.randn(5, 3, generator=gen, dtype=DT, requires_grad=True)
    lq = torch.tensor([0, 1, 1, 2, 0, 3])
    lr = torch.tensor([1, 0, 2, 1, 0])
    loss = make().double()
    assert torch.autograd.gradcheck(lambda a, b: loss(a, lq, b, lr), (q, r))
    assert torch.autograd.gradcheck(lambda a: loss(a, lq), (q,))


def test_circle_gradient_holds_weights_constant() -> None:
    """Finite differences of the circle formula with α frozen at the evaluation point."""
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(5, 3, generator=gen, dtype=DT)
    r = torch.randn(6, 3, generator=gen, dtype=DT)
    lq, lr = torch.tensor([0, 1, 1, 2, 0]), torch.tensor([1, 0, 2, 1, 0, 2])
    m, gamma = 0.25, 4.0
    frozen = F.normalize(q, dim=1) @ F.normalize(r, dim=1).T
    alpha_p = torch.relu(1 + m - frozen)
    alpha_n = torch.relu(frozen + m)

    def with_frozen_weights(q_: torch.Tensor) -> torch.Tensor:
        s = F.normalize(q_, dim=1) @ F.normalize(r, dim=1).T
        losses = []
        for i in range(len(lq)):
            pos = [j for j in range(len(lr)) if lr[j] == lq[i]]
            neg = [j for j in range(len(lr)) if lr[j] != lq[i]]
            total = sum(
                torch.exp(
                    gamma * (alpha_n[i, n] * (s[i, n] - m) - alpha_p[i, p] * (s[i, p] - 1 + m))
                )
                for n in neg
                for p in pos
            )
            losses.append(torch.log(1 + total))
        return torch.stack(losses).mean()

    eps = 1e-6
    numeric = torch.zeros_like(q)
    for idx in range(q.numel()):
        step = torch.zeros_like(q).view(-1)
        step[idx] = eps
        step = step.view_as(q)
        numeric.view(-1)[idx] = (with_frozen_weights(q + step) - with_frozen_weights(q - step)) / (
            2 * eps
        )
    q_ours = q.clone().requires_grad_(True)
    CircleLoss(m=m, gamma=gamma)(q_ours, lq, r, lr).backward()
    torch.testing.assert_close(q_ours.grad, numeric, rtol=1e-6, atol=1e-8)


def test_triplet_sorting_path_equals_slot_path_and_naive() -> None:
    gen = torch.Generator().manual_seed(4)
    q = torch.randn(40, 6, generator=gen, dtype=DT, requires_grad=True)
    r = torch.randn(50, 6, generator=gen, dtype=DT, requires_grad=True)
    lq = torch.randint(0, 3, (40,), generator=gen)
    lr = torch.randint(0, 3, (50,), generator=gen)
    slots, sorting = TripletMarginLoss(margin=0.4), TripletMarginLoss(margin=0.4)
    sorting.slot_limit = 0
    a = slots(q, lq, r, lr)
    (ga, gb) = torch.autograd.grad(a, (q, r))
    b = sorting(q, lq, r, lr)
    (ha, hb) = torch.autograd.grad(b, (q, r))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    torch.testing.assert_close(ga, ha, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(gb, hb, rtol=1e-10, atol=1e-14)
    s = Setting(q.detach()[:12], lq[:12], r.detach()[:15], lr[:15])
    small = TripletMarginLoss(margin=0.4)
    small.slot_limit = 0
    torch.testing.assert_close(s.call(small), naive_triplet(s, 0.4, False), rtol=1e-10, atol=0)


def test_sorting_path_gradcheck() -> None:
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(5, 3, generator=gen, dtype=DT, requires_grad=True)
    r = torch.randn(7, 3, generator=gen, dtype=DT, requires_grad=True)
    lq = torch.tensor([0, 1, 1, 0, 2])
    lr = torch.tensor([1, 0, 1, 0, 2, 2, 1])
    loss = TripletMarginLoss(margin=0.5)
    loss.slot_limit = 0
    assert torch.autograd.gradcheck(lambda a, b: loss(a, lq, b, lr), (q, r))


def test_info_nce_single_positive_is_cross_entropy() -> None:
    # CLIP's form: one match per row, cross-entropy over the full row of logits.
    gen = torch.Generator().manual_seed(6)
    video, music = torch.randn(7, 4, generator=gen), torch.randn(7, 4, generator=gen)
    labels = torch.arange(7)
    loss = InfoNCELoss(temperature=0.1, learnable=False)
    logits = F.normalize(video, dim=1) @ F.normalize(music, dim=1).T / 0.1
    torch.testing.assert_close(loss(video, labels, music, labels), F.cross_entropy(logits, labels))


def test_info_nce_temperature_is_learnable_and_clamped() -> None:
    loss = InfoNCELoss()
    assert isinstance(loss.log_scale, torch.nn.Parameter)
    assert loss.temperature == pytest.approx(0.07)
    x, y = torch.randn(6, 4), torch.randn(6, 4)
    labels = torch.arange(6)
    loss(x, labels, y, labels).backward()
    assert loss.log_scale.grad is not None
    assert loss.log_scale.grad != 0
    with torch.no_grad():
        loss.log_scale.fill_(math.log(1000.0))
    assert float(loss.logit_scale.detach()) == pytest.approx(100.0)
    loss.log_scale.grad = None
    loss(x, labels, y, labels).backward()
    assert loss.log_scale.grad == 0  # clamped: no gradient pushes it further
    fixed = InfoNCELoss(temperature=0.5, learnable=False)
    assert not list(fixed.parameters())
    assert float(fixed.logit_scale) == 2.0
