"""The loss defaults derived for unit vectors and cross-modal starts (docs/losses.md,
"Defaults"), each checked against what it was derived from."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from crossmodal.losses import (
    AMSoftmaxLoss,
    ArcFaceLoss,
    ContrastiveLoss,
    CosFaceLoss,
    L2SoftmaxLoss,
    LargeMarginSoftmaxLoss,
    MultiSimilarityLoss,
    NormFaceLoss,
    SphereFaceLoss,
)
from crossmodal.losses.proxy_base import normface_scale


def simplex(classes: int, dim: int) -> torch.Tensor:
    """``classes`` unit vectors with pairwise cosine −1/(C−1) (a regular simplex)."""
    centred = torch.eye(classes, dtype=torch.float64) - 1.0 / classes
    basis = torch.linalg.qr(
        torch.randn(dim, classes, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    )[0]
    return F.normalize(centred @ basis.T, dim=1)


@pytest.mark.parametrize("classes", [2, 5, 10, 40])
@pytest.mark.parametrize("probability", [0.9, 0.99])
def test_normface_scale_gives_the_probability_at_the_ideal_configuration(
    classes: int, probability: float
) -> None:
    """NormFace's bound: embeddings on their evenly spread proxies are classified with
    exactly ``probability`` at that scale (softmax computed here, not from the formula)."""
    proxies = simplex(classes, 64)
    scale = normface_scale(classes, probability)
    logits = scale * proxies @ proxies.T  # embedding i sits on proxy i
    assert torch.softmax(logits, dim=1).diagonal() == pytest.approx(
        [probability] * classes, rel=1e-9
    )


def test_normface_default_scale_follows_the_class_count() -> None:
    assert NormFaceLoss(10, 8).scale == pytest.approx(normface_scale(10))
    assert NormFaceLoss(1000, 8).scale > NormFaceLoss(10, 8).scale
    assert NormFaceLoss(10, 8, scale=20.0).scale == 20.0


def test_l2_softmax_default_alpha_is_the_papers_bound() -> None:
    """Ranjan et al.: α_low = ln(p (C − 2) / (1 − p)), p = 0.9."""
    for classes, expected in [(10, math.log(0.9 * 8 / 0.1)), (1000, math.log(0.9 * 998 / 0.1))]:
        assert L2SoftmaxLoss(classes, 8).alpha == pytest.approx(expected)
    assert L2SoftmaxLoss(2, 8).alpha > 0  # the formula's C − 2 = 0 is floored at 1


@pytest.mark.parametrize("cls", [AMSoftmaxLoss, CosFaceLoss, ArcFaceLoss])
def test_margin_losses_default_scale(cls) -> None:
    # At most NormFace's bound for 10⁴ classes at p = 0.999 (the docstrings' argument).
    assert cls(10, 8).scale == 16.0 <= normface_scale(10_000, 0.999)


@pytest.mark.parametrize("cls", [LargeMarginSoftmaxLoss, SphereFaceLoss])
def test_multiplicative_margin_proxies_start_standard_normal(cls) -> None:
    torch.manual_seed(0)
    weight = cls(200, 256).weight.detach()
    assert weight.mean().item() == pytest.approx(0.0, abs=0.01)
    assert weight.std().item() == pytest.approx(1.0, abs=0.01)
    # The other proxy losses keep Xavier-normal: std sqrt(2 / (C + D)).
    assert NormFaceLoss(200, 256).weight.std().item() == pytest.approx(math.sqrt(2 / 456), rel=0.02)


def cross_modal_start(
    n: int = 64, dim: int = 256, cosine: float = -0.07
) -> tuple[torch.Tensor, ...]:
    """Two towers' unit embeddings as at the start of cross-modal training: every
    video/music cosine near ``cosine`` (a shared direction, +u for video and −u for music,
    weighted √−cosine, plus independent parts: std ≈ 0.93/√dim ≈ 0.06), and labels with 4
    items per class."""
    gen = torch.Generator().manual_seed(3)
    u = F.normalize(torch.randn(dim, generator=gen, dtype=torch.float64), dim=0)

    def independent() -> torch.Tensor:
        x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
        return F.normalize(x - (x @ u)[:, None] * u, dim=1)

    a = math.sqrt(-cosine)
    video = a * u + math.sqrt(1 - a * a) * independent()
    music = -a * u + math.sqrt(1 - a * a) * independent()
    return video.requires_grad_(True), music, torch.arange(n) // 4


def test_the_cross_modal_start_is_what_the_defaults_assume() -> None:
    video, music, _ = cross_modal_start()
    cosines = video.detach() @ music.T
    assert cosines.mean().item() == pytest.approx(-0.07, abs=0.01)
    assert torch.cdist(video.detach(), music).mean().item() == pytest.approx(1.46, abs=0.01)


def test_contrastive_default_margin_sits_clearly_beyond_the_cross_modal_start() -> None:
    video, music, labels = cross_modal_start()
    negatives = labels[:, None] != labels[None, :]
    distances = torch.cdist(video.detach(), music)[negatives]
    margin = ContrastiveLoss().neg_margin
    assert margin == 1.6
    # All but a 4σ tail (2 of 3,840) are inside 1.6 (cosine −0.28); 1.5 (cosine −0.125)
    # leaves about a sixth of them out and a mean hinge a third as long; 1 reaches none.
    assert (distances < margin).double().mean() > 0.999
    assert 0.1 < (distances >= 1.5).double().mean() < 0.25
    hinge = (margin - distances).clamp_min(0).mean() / (1.5 - distances).clamp_min(0).mean()
    assert hinge > 3
    assert (distances > 1.0).all()

    def negatives_only(neg_margin: float) -> tuple[float, float]:
        v = video.detach().clone().requires_grad_(True)
        # pos_margin 2 (the largest distance of unit vectors): no positive term.
        value = ContrastiveLoss(pos_margin=2.0, neg_margin=neg_margin)(v, labels, music, labels)
        value.backward()
        return value.item(), v.grad.norm().item()

    at_default, at_1_5 = negatives_only(margin), negatives_only(1.5)
    assert min(at_default) > 1e-3
    assert at_default[0] > 4 * at_1_5[0]  # the mean squared hinge
    assert negatives_only(1.0) == (0.0, 0.0)  # the customary margin: no negative fires


def multi_similarity_negative_weights(beta: float, base: float) -> torch.Tensor:
    """dℓ/dS_n of one video anchor against 64 music negatives at the cross-modal start,
    read from the loss's own gradient: for unit references ‖dℓ/dm_n‖ = w_n √(1 − S_n²)."""
    video, music, _ = cross_modal_start()
    anchor = video.detach()[:1]
    m = music.clone().requires_grad_(True)
    # No positive: reference labels differ from the anchor's.
    loss = MultiSimilarityLoss(beta=beta, base=base)
    loss(anchor, torch.tensor([0]), m, torch.arange(1, 65)).backward()
    cosines = (anchor @ music.T)[0]
    weights = m.grad.norm(dim=1) / (1 - cosines**2).sqrt()
    # The formula's weights, exp(β (S − λ)) / (1 + Σ exp(β (S − λ))): the gradient is theirs.
    e = torch.exp(beta * (cosines - base))
    assert weights == pytest.approx((e / (1 + e.sum())).tolist(), abs=1e-12)
    return weights


def effective_count(weights: torch.Tensor) -> float:
    """(Σw)² / Σw²: how many negatives share the push (all of them when equal)."""
    return (weights.sum() ** 2 / (weights**2).sum()).item()


def test_multi_similarity_defaults_spread_the_negatives_weight_at_a_cross_modal_start() -> None:
    """The paper's pair α 2, λ 0.5 with β 2: the whole batch's negatives push, with a total
    weight near 1. β 50 concentrates it on a handful of the 64 (with λ 0.5 it also
    vanishes: e^−28 each, the collapse that λ 0 once fixed)."""
    loss = MultiSimilarityLoss()
    assert (loss.alpha, loss.beta, loss.base) == (2.0, 2.0, 0.5)
    spread = multi_similarity_negative_weights(2.0, 0.5)
    assert effective_count(spread) > 60
    assert spread.sum().item() > 0.9
    assert (spread.max() / spread.sum()).item() < 0.03
    peaked = multi_similarity_negative_weights(50.0, 0.0)
    assert effective_count(peaked) < 8
    assert (peaked.topk(3).values.sum() / peaked.sum()).item() > 0.5
    # λ only scales the total against the 1 in log(1 + Σ); the shares are β's.
    assert multi_similarity_negative_weights(50.0, 0.5).sum().item() < 1e-8
