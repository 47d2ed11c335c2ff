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


def cross_modal_start(n: int = 64, dim: int = 256) -> tuple[torch.Tensor, ...]:
    """Two independent towers' unit embeddings (cosines near 0, as at the start of
    cross-modal training) and labels with 4 items per class."""
    gen = torch.Generator().manual_seed(3)
    video = F.normalize(torch.randn(n, dim, generator=gen, dtype=torch.float64), dim=1)
    music = F.normalize(torch.randn(n, dim, generator=gen, dtype=torch.float64), dim=1)
    return video.requires_grad_(True), music, torch.arange(n) // 4


def test_contrastive_default_margin_makes_every_negative_count_at_a_cross_modal_start() -> None:
    video, music, labels = cross_modal_start()
    negatives = labels[:, None] != labels[None, :]
    distances = torch.cdist(video.detach(), music)
    # Cosines of independent 256-D unit vectors spread with std 1/16: about 98 % of the
    # negatives are above cosine −0.125, within the default margin; none is within 1.
    within = (distances[negatives] < ContrastiveLoss().neg_margin).double().mean()
    assert within > 0.95
    assert (distances[negatives] > 1.0).all()

    def negatives_only(neg_margin: float) -> tuple[float, float]:
        v = video.detach().clone().requires_grad_(True)
        # pos_margin 2 (the largest distance of unit vectors): no positive term.
        value = ContrastiveLoss(pos_margin=2.0, neg_margin=neg_margin)(v, labels, music, labels)
        value.backward()
        return value.item(), v.grad.norm().item()

    assert min(negatives_only(ContrastiveLoss().neg_margin)) > 1e-4
    assert negatives_only(1.0) == (0.0, 0.0)  # the customary margin: no negative fires


def test_multi_similarity_default_base_weighs_negatives_at_a_cross_modal_start() -> None:
    """With λ = 0.5 (the paper's) a negative at cosine ≈ 0 weighs about e^−25; with the
    default λ = 0 the negatives push."""
    video, music, labels = cross_modal_start()
    ref_labels = labels + labels.max() + 1  # no positives: the negative term alone

    def negative_grad(base: float) -> float:
        v = video.detach().clone().requires_grad_(True)
        MultiSimilarityLoss(base=base)(v, labels, music, ref_labels).backward()
        return v.grad.norm().item()

    assert MultiSimilarityLoss().base == 0.0
    assert negative_grad(0.0) > 1e-2
    assert negative_grad(0.5) < 1e-6
