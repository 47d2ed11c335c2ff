"""SymmetricLoss, WeightedSum, the default objective, and building losses by name."""

from __future__ import annotations

import pytest
import torch

from crossmodal.losses import (
    ArcFaceLoss,
    CircleLoss,
    ContrastiveLoss,
    InfoNCELoss,
    NPairLoss,
    PairwiseLoss,
    ProxyLoss,
    SymmetricLoss,
    TripletMarginLoss,
    WeightedSum,
    create_loss,
    default_objective,
    is_proxy_loss,
    list_losses,
    register_loss,
)
from crossmodal.sampling.miners import BatchHardMiner

ISSUE_NAMES = {
    "contrastive": "ContrastiveLoss",
    "triplet_margin": "TripletMarginLoss",
    "lifted_structure": "LiftedStructureLoss",
    "npair": "NPairLoss",
    "multi_similarity": "MultiSimilarityLoss",
    "circle": "CircleLoss",
    "info_nce": "InfoNCELoss",
    "l2_softmax": "L2SoftmaxLoss",
    "large_margin_softmax": "LargeMarginSoftmaxLoss",
    "sphereface": "SphereFaceLoss",
    "normface": "NormFaceLoss",
    "am_softmax": "AMSoftmaxLoss",
    "cosface": "CosFaceLoss",
    "arcface": "ArcFaceLoss",
    "proxy_circle": "ProxyCircleLoss",
}


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    return (
        torch.randn(8, 6, generator=gen),
        labels,
        torch.randn(8, 6, generator=gen),
        labels.flip(0),
    )


def test_registry_holds_every_loss_of_the_issue() -> None:
    assert set(ISSUE_NAMES) | {"default"} == set(list_losses())
    for name, cls_name in ISSUE_NAMES.items():
        kwargs = {"num_classes": 4, "embedding_dim": 6} if is_proxy_loss(name) else {}
        loss = create_loss(name, **kwargs)
        assert type(loss).__name__ == cls_name
        assert isinstance(loss, ProxyLoss if is_proxy_loss(name) else PairwiseLoss)


def test_create_loss_options_and_errors() -> None:
    loss = create_loss("circle", m=0.3, gamma=32.0)
    assert isinstance(loss, CircleLoss)
    assert (loss.m, loss.gamma) == (0.3, 32.0)
    sym = create_loss("info_nce", symmetric=True, temperature=0.1)
    assert isinstance(sym, SymmetricLoss)
    assert isinstance(sym.loss, InfoNCELoss)
    mined = create_loss("triplet_margin", miner="batch_hard")
    assert isinstance(mined.miner, BatchHardMiner)
    with pytest.raises(ValueError, match="unknown loss 'nope'; choose one of"):
        create_loss("nope")
    with pytest.raises(ValueError, match="bad arguments for loss 'circle'"):
        create_loss("circle", margin=3)
    with pytest.raises(ValueError, match="bad arguments for loss 'arcface'"):
        create_loss("arcface")  # num_classes and embedding_dim are required
    with pytest.raises(ValueError, match="already registered"):
        register_loss("circle", CircleLoss)


def test_symmetric_loss_averages_both_directions() -> None:
    video, lv, music, lm = batch()
    inner = InfoNCELoss(temperature=0.2)
    both = SymmetricLoss(inner)(video, lv, music, lm)
    expected = 0.5 * (inner(video, lv, music, lm) + inner(music, lm, video, lv))
    torch.testing.assert_close(both, expected)
    # A separate reverse module is used for the second direction.
    other = ContrastiveLoss()
    mixed = SymmetricLoss(inner, other)(video, lv, music, lm)
    torch.testing.assert_close(
        mixed, 0.5 * (inner(video, lv, music, lm) + other(music, lm, video, lv))
    )


def test_weighted_sum_and_last_terms() -> None:
    video, lv, music, lm = batch(1)
    a, b = TripletMarginLoss(), ContrastiveLoss()
    combo = WeightedSum({"triplet": a, "contrastive": b}, {"triplet": 0.3})
    value = combo(video, lv, music, lm)
    ta, tb = a(video, lv, music, lm), b(video, lv, music, lm)
    torch.testing.assert_close(value, 0.3 * ta + tb)
    torch.testing.assert_close(combo.last_terms["triplet"], ta.detach())
    torch.testing.assert_close(combo.last_terms["contrastive"], tb.detach())
    with pytest.raises(ValueError, match="not given"):
        WeightedSum({"triplet": a}, {"other": 1.0})
    with pytest.raises(ValueError, match="at least one"):
        WeightedSum({})


def test_default_objective_is_symmetric_info_nce_plus_symmetric_npair() -> None:
    video, lv, music, lm = batch(2)
    objective = default_objective(info_nce_weight=0.7, npair_weight=0.4, temperature=0.1)
    value = objective(video, lv, music, lm)
    nce, npair = InfoNCELoss(temperature=0.1), NPairLoss()
    expected = 0.7 * 0.5 * (nce(video, lv, music, lm) + nce(music, lm, video, lv))
    expected = expected + 0.4 * 0.5 * (npair(video, lv, music, lm) + npair(music, lm, video, lv))
    torch.testing.assert_close(value, expected)
    assert set(objective.last_terms) == {"info_nce", "npair"}
    # The temperature is a parameter of the objective, so an optimiser trains it.
    assert any(name.endswith("log_scale") for name, _ in objective.named_parameters())
    assert isinstance(create_loss("default"), WeightedSum)


def test_shared_proxies_tie_modalities_in_symmetric_use() -> None:
    video, lv, music, lm = batch(3)
    loss = ArcFaceLoss(4, 6)
    SymmetricLoss(loss)(video, lv, music, lm).backward()
    assert loss.weight.grad is not None
    assert loss.weight.grad.abs().sum() > 0
