"""SymmetricLoss, WeightedSum, the default objective, building losses by name, and the
one call every loss and wrapper shares."""

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
    list_losses,
    loss_kind,
    register_loss,
)
from crossmodal.registry import BadArgumentsError, UnknownNameError
from crossmodal.sampling.memory import CrossBatchMemory
from crossmodal.sampling.miners import BatchHardMiner, MultiSimilarityMiner, SemiHardMiner

ISSUE_NAMES = {
    "contrastive": "ContrastiveLoss",
    "triplet_margin": "TripletMarginLoss",
    "lifted_structure": "LiftedStructureLoss",
    "npair": "NPairLoss",
    "multi_similarity": "MultiSimilarityLoss",
    "circle": "CircleLoss",
    "info_nce": "InfoNCELoss",
    "binomial_deviance": "BinomialDevianceLoss",
    "l2_softmax": "L2SoftmaxLoss",
    "large_margin_softmax": "LargeMarginSoftmaxLoss",
    "sphereface": "SphereFaceLoss",
    "normface": "NormFaceLoss",
    "am_softmax": "AMSoftmaxLoss",
    "cosface": "CosFaceLoss",
    "arcface": "ArcFaceLoss",
    "proxy_circle": "ProxyCircleLoss",
    "siglip": "SigLIPLoss",
    "proxy_anchor": "ProxyAnchorLoss",
    "supcon": "SupConLoss",
    "hard_negative_nce": "HardNegativeNCELoss",
    "smooth_ap": "SmoothAPLoss",
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
    # "default" is a training preset (DEFAULT_PRESET), not a loss.
    assert set(ISSUE_NAMES) == set(list_losses())
    assert set(list_losses("proxy")) | set(list_losses("pairwise")) == set(list_losses())
    for name, cls_name in ISSUE_NAMES.items():
        kwargs = {"num_classes": 4, "embedding_dim": 6} if loss_kind(name) == "proxy" else {}
        loss = create_loss(name, **kwargs)
        assert type(loss).__name__ == cls_name
        assert isinstance(loss, ProxyLoss if loss_kind(name) == "proxy" else PairwiseLoss)


def test_create_loss_options_and_errors() -> None:
    loss = create_loss("circle", m=0.3, gamma=32.0)
    assert isinstance(loss, CircleLoss)
    assert (loss.m, loss.gamma) == (0.3, 32.0)
    sym = create_loss("info_nce", symmetric=True, temperature=0.1)
    assert isinstance(sym, SymmetricLoss)
    assert isinstance(sym.loss, InfoNCELoss)
    mined = create_loss("triplet_margin", miner="batch_hard")
    assert isinstance(mined.miner, BatchHardMiner)
    # One error type per failure for every registry (crossmodal.registry).
    with pytest.raises(UnknownNameError, match="unknown loss 'nope'"):
        create_loss("nope")
    with pytest.raises(UnknownNameError, match="Did you mean 'circle'"):
        create_loss("circel")
    with pytest.raises(UnknownNameError, match="unknown loss 'default'"):
        create_loss("default")  # a training preset, not a loss
    with pytest.raises(BadArgumentsError, match="bad arguments for loss 'circle'"):
        create_loss("circle", margin=3)
    with pytest.raises(BadArgumentsError, match="bad arguments for loss 'arcface'"):
        create_loss("arcface")  # num_classes and embedding_dim are required
    with pytest.raises(ValueError, match="already registered"):
        register_loss("circle", CircleLoss, kind="pairwise")
    with pytest.raises(ValueError, match="kind must be one of"):
        register_loss("circle_2", CircleLoss, kind="pair")
    with pytest.raises(BadArgumentsError, match="proxy loss: it takes no miner"):
        create_loss("arcface", num_classes=4, embedding_dim=6, miner="batch_hard")
    with pytest.raises(BadArgumentsError, match="takes no cross-batch memory"):
        create_loss("arcface", num_classes=4, embedding_dim=6, memory_size=8)
    with pytest.raises(BadArgumentsError, match="memory_size needs embedding_dim"):
        create_loss("info_nce", memory_size=8)
    with pytest.raises(BadArgumentsError, match="bad arguments for miner 'semi_hard'"):
        create_loss("triplet_margin", miner={"name": "semi_hard", "eps": 1})


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


def test_shared_proxies_tie_modalities_in_symmetric_use() -> None:
    video, lv, music, lm = batch(3)
    loss = ArcFaceLoss(4, 6)
    SymmetricLoss(loss)(video, lv, music, lm).backward()
    assert loss.weight.grad is not None
    assert loss.weight.grad.abs().sum() > 0


def test_create_loss_builds_miner_with_params_memory_and_both_directions() -> None:
    mined = create_loss("triplet_margin", miner={"name": "semi_hard", "margin": 0.3})
    assert isinstance(mined.miner, SemiHardMiner)
    assert mined.miner.margin == 0.3
    both = create_loss("info_nce", symmetric=True, memory_size=8, embedding_dim=6)
    assert isinstance(both, SymmetricLoss)
    assert isinstance(both.loss, CrossBatchMemory)
    assert isinstance(both.reverse, CrossBatchMemory)
    assert both.loss is not both.reverse
    # One loss inside both memories: one temperature, one owner.
    assert both.loss.loss is both.reverse.loss
    assert len([p for p in both.parameters()]) == 1
    one = create_loss("circle", memory_size=8, embedding_dim=6, memory_warmup=3)
    assert isinstance(one, CrossBatchMemory)
    assert (one.memory_size, one.warmup_iters) == (8, 3)


def test_symmetric_loss_follows_the_contract() -> None:
    video, lv, music, lm = batch(4)
    inner = InfoNCELoss(temperature=0.2)
    # ref_emb=None: the batch against itself in both directions, i.e. loss(e, y).
    sym = create_loss("info_nce", symmetric=True, temperature=0.2)
    torch.testing.assert_close(sym(video, lv), inner(video, lv))
    separate = SymmetricLoss(inner, ContrastiveLoss())
    torch.testing.assert_close(
        separate(video, lv), 0.5 * (inner(video, lv) + ContrastiveLoss()(video, lv))
    )
    # Miner masks are given for the first direction and transposed for the second.
    pos, neg = MultiSimilarityMiner(epsilon=0.3)(video, lv, music, lm)
    value = sym(video, lv, music, lm, miner_masks=(pos, neg))
    expected = 0.5 * (
        inner(video, lv, music, lm, miner_masks=(pos, neg))
        + inner(music, lm, video, lv, miner_masks=(pos.T, neg.T))
    )
    torch.testing.assert_close(value, expected)
    assert not torch.allclose(value, sym(video, lv, music, lm))


def _wrapped(name: str, wrapper: str) -> torch.nn.Module:
    proxy = loss_kind(name) == "proxy"
    params = {"num_classes": 4} if proxy else {}
    if wrapper == "plain":
        return create_loss(name, embedding_dim=6, **params)
    if wrapper == "symmetric":
        return create_loss(name, symmetric=True, embedding_dim=6, **params)
    if wrapper == "memory":
        return create_loss(name, symmetric=True, memory_size=12, embedding_dim=6, **params)
    return WeightedSum(
        {"a": create_loss(name, symmetric=True, embedding_dim=6, **params),
         "b": create_loss("info_nce")},
        {"a": 0.5},
    )  # fmt: skip


@pytest.mark.parametrize("wrapper", ["plain", "symmetric", "memory", "weighted_sum"])
@pytest.mark.parametrize("name", list_losses())
def test_every_loss_and_wrapper_takes_the_same_call(name: str, wrapper: str) -> None:
    if wrapper == "memory" and loss_kind(name) == "proxy":
        with pytest.raises(BadArgumentsError, match="proxy loss"):
            _wrapped(name, wrapper)
        return
    torch.manual_seed(0)
    loss = _wrapped(name, wrapper).double()
    video, lv, music, lm = (t.double() if t.is_floating_point() else t for t in batch(5))
    video.requires_grad_(True)
    for _ in range(2):  # twice: a memory is filled by the first call, used by the second
        values = [
            loss(video, lv),
            loss(video, lv, music, lm),
            loss(video, lv, ref_emb=music, ref_labels=lm),
        ]
    for value in values:
        assert value.ndim == 0
        assert torch.isfinite(value)
    values[1].backward()
    assert video.grad is not None
    assert torch.isfinite(video.grad).all()
    masks = MultiSimilarityMiner(epsilon=0.3)(video, lv, music, lm)
    if loss_kind(name) == "proxy":
        with pytest.raises(ValueError, match="proxy loss and takes no miner masks"):
            loss(video, lv, music, lm, miner_masks=masks)
    else:
        mined = loss(video, lv, music, lm, miner_masks=masks)
        assert torch.isfinite(mined)
