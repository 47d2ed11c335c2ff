"""Bad input gets a specific ValueError; the diagonal rule never depends on tensor identity."""

from __future__ import annotations

import pytest
import torch

from crossmodal.losses import (
    ContrastiveLoss,
    InfoNCELoss,
    TripletMarginLoss,
    create_loss,
    list_losses,
    loss_kind,
)

NAMES = list_losses()


def build(name: str) -> torch.nn.Module:
    kwargs = {"num_classes": 4, "embedding_dim": 3} if loss_kind(name) == "proxy" else {}
    return create_loss(name, **kwargs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((torch.randn(4, 3), torch.tensor([0, 1, 2])), "4 rows but labels has 3"),
        ((torch.randn(4, 3), torch.zeros(4, 1, dtype=torch.long)), "labels must be 1-D"),
        ((torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 3.0])), "integer class ids"),
        ((torch.randn(3), torch.tensor([0, 1, 2])), "embeddings must be 2-D"),
        ((torch.tensor([[0.0, 1, 2], [float("nan"), 0, 0]]), torch.tensor([0, 1])), "NaN or inf"),
        ((torch.tensor([[0.0, 1, 2], [float("inf"), 0, 0]]), torch.tensor([0, 1])), "NaN or inf"),
        ((torch.randn(0, 3), torch.zeros(0, dtype=torch.long)), "empty"),
        ((torch.randint(0, 3, (4, 3)), torch.tensor([0, 1, 2, 3])), "floating-point"),
        (
            (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), torch.randn(5, 3)),
            "must be given together",
        ),
        (
            (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), torch.randn(5, 3), torch.arange(4)),
            "ref_emb has 5 rows but ref_labels has 4",
        ),
        (
            (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), torch.randn(5, 2), torch.arange(5)),
            "ref_emb has dim 2",
        ),
        (
            (
                torch.randn(4, 3),
                torch.tensor([0, 1, 2, 3]),
                torch.randn(5, 3, dtype=torch.float64),
                torch.arange(5),
            ),
            "float64",
        ),
        (
            (
                torch.randn(4, 3),
                torch.tensor([0, 1, 2, 3]),
                torch.tensor([[1.0, 2, 3], [float("nan"), 1, 1]]),
                torch.arange(2),
            ),
            "ref_emb contains NaN",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(name, args, message) -> None:
    with pytest.raises(ValueError, match=message):
        build(name)(*args)


@pytest.mark.parametrize("loss", [ContrastiveLoss(), TripletMarginLoss(), InfoNCELoss()])
def test_bad_miner_masks(loss) -> None:
    emb, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    good = torch.ones(4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        loss(emb, labels, miner_masks=(good[:, :3], good))
    with pytest.raises(ValueError, match="must be a bool tensor"):
        loss(emb, labels, miner_masks=(good.float(), good))
    with pytest.raises(ValueError, match="pair"):
        loss(emb, labels, miner_masks=good)


def test_labels_are_compared_by_value_not_identity() -> None:
    # pytorch-metric-learning zeroes the diagonal when ref_labels *is* labels; here the
    # same values give the same result whether or not the tensors are the same object.
    gen = torch.Generator().manual_seed(0)
    video, music = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    for loss in (InfoNCELoss(), ContrastiveLoss(), TripletMarginLoss()):
        same = loss(video, labels, music, labels)
        copy = loss(video, labels, music, labels.clone())
        assert same.item() > 0
        assert same.item() == copy.item()


def test_explicit_self_reference_keeps_the_diagonal_as_positive() -> None:
    emb = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(6)  # no positive except an item's own copy
    loss = InfoNCELoss(learnable=False)
    assert loss(emb, labels).item() == 0.0  # diagonal excluded: no anchor has a positive
    explicit = loss(emb, labels, emb, labels)  # a cross-modal call: (i, i) is a positive pair
    assert explicit.item() > 0
    assert explicit.item() == loss(emb, labels, emb.clone(), labels.clone()).item()
