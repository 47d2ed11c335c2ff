"""Parity with pytorch-metric-learning (PML, test-only) at matching hyper-parameters.

PML calls always get a *distinct* ``ref_labels`` tensor: PML drops the diagonal of the
match matrix when ``ref_labels is labels`` (object identity), so passing the same tensor
silently removes positives. Where our definition deliberately differs from PML's, the test
says how, shows the difference, and compares on inputs where the definitions coincide.
"""

from __future__ import annotations

import math

import pytest
import torch

from crossmodal.losses import (
    ArcFaceLoss,
    CircleLoss,
    ContrastiveLoss,
    CosFaceLoss,
    InfoNCELoss,
    LargeMarginSoftmaxLoss,
    LiftedStructureLoss,
    MultiSimilarityLoss,
    NormFaceLoss,
    NPairLoss,
    SphereFaceLoss,
    TripletMarginLoss,
)

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")

DT = torch.float64
# PML's L-Softmax builds its coefficients through scipy on numpy 2 and warns about it.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pytorch_metric_learning")


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def crossmodal(k_per_class: int = 3, classes: int = 5, seed: int = 0):
    labels = torch.arange(classes).repeat_interleave(k_per_class)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 100))
    return (
        randn(len(labels), 8, seed=seed),
        labels,
        randn(len(labels), 8, seed=seed + 1),
        labels[perm],
    )


def assert_same(ours_fn, pml_fn, *tensors: torch.Tensor) -> None:
    """Equal values and equal gradients w.r.t. every input tensor."""
    a = [t.clone().requires_grad_(True) for t in tensors]
    b = [t.clone().requires_grad_(True) for t in tensors]
    ours, theirs = ours_fn(*a), pml_fn(*b)
    assert theirs.item() != 0.0, "PML must compute a real value here"
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-9, atol=1e-12)
    ours.backward()
    theirs.backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-7, atol=1e-10)


# ---------------------------------------------------------------- InfoNCE vs NTXent


def test_info_nce_equals_ntxent_with_one_positive_per_query() -> None:
    video, lv, music, lm = crossmodal(k_per_class=1, classes=10)
    ours = InfoNCELoss(temperature=0.1, learnable=False)
    pml = pml_losses.NTXentLoss(temperature=0.1)
    assert_same(
        lambda v, m: ours(v, lv, m, lm),
        lambda v, m: pml(v, lv, ref_emb=m, ref_labels=lm.clone()),
        video,
        music,
    )
    # Unimodal, each label twice: one positive per anchor as well.
    emb, labels = randn(12, 8, seed=3), torch.arange(6).repeat(2)
    assert_same(lambda e: ours(e, labels), lambda e: pml(e, labels), emb)


def test_info_nce_multi_positive_differs_from_ntxent_by_definition() -> None:
    """With several positives, PML scores each positive pair against the negatives only
    (the other positives leave the denominator) and averages over pairs; ours keeps every
    candidate in the softmax and averages per anchor (SupCon's L_out)."""
    video, lv, music, lm = crossmodal(k_per_class=3)
    tau = 0.1
    pml_value = pml_losses.NTXentLoss(temperature=tau)(
        video, lv, ref_emb=music, ref_labels=lm.clone()
    )
    sim = (
        torch.nn.functional.normalize(video, dim=1) @ torch.nn.functional.normalize(music, dim=1).T
    )
    pml_def = []
    for i in range(len(lv)):
        negs = [math.exp(sim[i, n] / tau) for n in range(len(lm)) if lm[n] != lv[i]]
        for p in (p for p in range(len(lm)) if lm[p] == lv[i]):
            pos = math.exp(sim[i, p] / tau)
            pml_def.append(-math.log(pos / (pos + sum(negs))))
    assert pml_value.item() == pytest.approx(sum(pml_def) / len(pml_def), rel=1e-9)
    ours = InfoNCELoss(temperature=tau, learnable=False)(video, lv, music, lm)
    assert abs(ours.item() - pml_value.item()) > 0.1


def test_pml_identity_trap_and_ours() -> None:
    video, labels, music, _ = crossmodal(k_per_class=1, classes=8)
    pml = pml_losses.NTXentLoss(temperature=0.1)
    assert pml(video, labels, ref_emb=music, ref_labels=labels).item() == 0.0  # the trap
    assert pml(video, labels, ref_emb=music, ref_labels=labels.clone()).item() > 0.0
    ours = InfoNCELoss(temperature=0.1, learnable=False)
    same_object = ours(video, labels, music, labels)
    torch.testing.assert_close(same_object, ours(video, labels, music, labels.clone()))
    torch.testing.assert_close(
        same_object, pml(video, labels, ref_emb=music, ref_labels=labels.clone()), rtol=1e-9, atol=0
    )


# ---------------------------------------------------------------- N-pair


def test_npair_equals_npairs_on_the_papers_setting() -> None:
    """PML's NPairsLoss takes no ref_emb and keeps one (anchor, positive) pair per label;
    it has no norm regulariser and normalises by default. On N (anchor, positive) pairs of
    distinct labels — the paper's batch — our cross-modal call (anchors vs positives)
    equals PML on the concatenated batch."""
    anchors, positives = randn(10, 8, seed=4), randn(10, 8, seed=5)
    labels = torch.randperm(10, generator=torch.Generator().manual_seed(6))
    ours = NPairLoss(scale=1.0, reg_weight=0.0, normalize=True)
    pml = pml_losses.NPairsLoss()
    assert_same(
        lambda a, p: ours(a, labels, p, labels),
        lambda a, p: pml(torch.cat([a, p]), torch.cat([labels, labels])),
        anchors,
        positives,
    )
    raw = pml_losses.NPairsLoss(
        distance=pml_distances.DotProductSimilarity(normalize_embeddings=False)
    )
    raw_ours = NPairLoss(scale=1.0, reg_weight=0.0)
    assert_same(
        lambda a, p: raw_ours(a, labels, p, labels),
        lambda a, p: raw(torch.cat([a, p]), torch.cat([labels, labels])),
        anchors,
        positives,
    )


# ---------------------------------------------------------------- pair losses with ref_emb


@pytest.mark.parametrize(
    ("ours", "pml"),
    [
        (
            lambda: ContrastiveLoss(pos_margin=0.2, neg_margin=1.1, power=1),
            lambda: pml_losses.ContrastiveLoss(pos_margin=0.2, neg_margin=1.1),
        ),
        (
            lambda: TripletMarginLoss(margin=0.3),
            lambda: pml_losses.TripletMarginLoss(margin=0.3),
        ),
        (
            lambda: TripletMarginLoss(margin=0.6, squared=True),
            lambda: pml_losses.TripletMarginLoss(
                margin=0.6, distance=pml_distances.LpDistance(power=2)
            ),
        ),
        (
            lambda: MultiSimilarityLoss(alpha=2.0, beta=40.0, base=0.5),
            lambda: pml_losses.MultiSimilarityLoss(alpha=2.0, beta=40.0, base=0.5),
        ),
        (
            lambda: CircleLoss(m=0.4, gamma=80.0),
            lambda: pml_losses.CircleLoss(m=0.4, gamma=80.0),
        ),
    ],
    ids=["contrastive", "triplet", "triplet_squared", "multi_similarity", "circle"],
)
def test_pair_losses_match_pml_unimodal_and_crossmodal(ours, pml) -> None:
    video, lv, music, lm = crossmodal(k_per_class=3)
    ours_loss, pml_loss = ours(), pml()
    assert_same(
        lambda v, m: ours_loss(v, lv, m, lm),
        lambda v, m: pml_loss(v, lv, ref_emb=m, ref_labels=lm.clone()),
        video,
        music,
    )
    assert_same(lambda v: ours_loss(v, lv), lambda v: pml_loss(v, lv), video)


def test_lifted_structure_matches_pml_unimodal() -> None:
    """Unimodal parity. Across modalities PML reads the positive's negatives from row
    ``p`` of the query×reference matrix, i.e. it uses a *reference* index as a *query*
    index; ours takes reference j's negatives from column j (see the docstring)."""
    emb, labels = randn(15, 8, seed=7), torch.arange(5).repeat(3)
    ours = LiftedStructureLoss(neg_margin=1.0, pos_margin=0.1)
    pml = pml_losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.1)
    assert_same(lambda e: ours(e, labels), lambda e: pml(e, labels), emb)


# ---------------------------------------------------------------- proxy losses


def copy_weights(ours: torch.nn.Module, pml: torch.nn.Module) -> None:
    with torch.no_grad():
        ours.weight.copy_(pml.W.t())


PROXY_CASES = [
    (
        "arcface",
        lambda: ArcFaceLoss(7, 8, margin=math.radians(28.6), scale=64.0),
        lambda: pml_losses.ArcFaceLoss(7, 8, margin=28.6, scale=64),
    ),
    (
        "cosface",
        lambda: CosFaceLoss(7, 8, margin=0.35, scale=64.0),
        lambda: pml_losses.CosFaceLoss(7, 8, margin=0.35, scale=64),
    ),
    (
        "sphereface",
        lambda: SphereFaceLoss(7, 8, margin=4),
        lambda: pml_losses.SphereFaceLoss(7, 8, margin=4, scale=1),
    ),
    (
        "large_margin_softmax",
        lambda: LargeMarginSoftmaxLoss(7, 8, margin=3),
        lambda: pml_losses.LargeMarginSoftmaxLoss(7, 8, margin=3, scale=1),
    ),
    (
        "normface",
        lambda: NormFaceLoss(7, 8, scale=20.0),
        lambda: pml_losses.NormalizedSoftmaxLoss(7, 8, temperature=0.05),
    ),
]


@pytest.mark.parametrize(("name", "ours", "pml"), PROXY_CASES, ids=[c[0] for c in PROXY_CASES])
def test_proxy_losses_match_pml(name, ours, pml) -> None:
    torch.manual_seed(8)
    pml_loss = pml().double()
    ours_loss = ours().double()
    copy_weights(ours_loss, pml_loss)
    emb = randn(20, 8, seed=9)
    labels = torch.arange(20) % 7
    a, b = emb.clone().requires_grad_(True), emb.clone().requires_grad_(True)
    value, expected = ours_loss(a, labels), pml_loss(b, labels)
    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-12)
    value.backward()
    expected.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(ours_loss.weight.grad, pml_loss.W.grad.t(), rtol=1e-7, atol=1e-10)
