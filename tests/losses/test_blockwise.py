"""Row-block (checkpointed) evaluation equals the one-block evaluation, values and gradients."""

from __future__ import annotations

import pytest
import torch

from crossmodal.losses import PairwiseLoss, create_loss, list_losses
from crossmodal.sampling.miners import MultiSimilarityMiner

PAIRWISE = list_losses("pairwise")


def evaluate(loss: PairwiseLoss, chunk_elements: int, *args, **kwargs):
    loss.chunk_elements = chunk_elements
    inputs = [a.clone().requires_grad_(True) if a.is_floating_point() else a for a in args]
    value = loss(*inputs, **kwargs)
    value.backward()
    grads = [a.grad for a in inputs if a.is_floating_point()]
    grads += [p.grad.clone() for p in loss.parameters() if p.grad is not None]
    for p in loss.parameters():
        p.grad = None
    return value.detach(), grads


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize("mode", ["unimodal", "crossmodal", "mined"])
def test_blocks_equal_one_block(name: str, mode: str) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(23, 5, generator=gen, dtype=torch.float64)
    r = torch.randn(19, 5, generator=gen, dtype=torch.float64)
    lq = torch.randint(0, 4, (23,), generator=gen)
    lr = torch.randint(0, 4, (19,), generator=gen)
    loss = create_loss(name).double()
    if mode == "unimodal":
        args, kwargs = (q, lq), {}
    elif mode == "crossmodal":
        args, kwargs = (q, lq, r, lr), {}
    else:
        masks = MultiSimilarityMiner(epsilon=0.3)(q, lq, r, lr)
        args, kwargs = (q, lq, r, lr), {"miner_masks": masks}
    whole, whole_grads = evaluate(loss, 1 << 30, *args, **kwargs)
    # 40 entries per block: 2 rows of 19-23 columns, so the last block is partial.
    blocks, block_grads = evaluate(loss, 40, *args, **kwargs)
    assert whole.item() != 0.0
    torch.testing.assert_close(blocks, whole, rtol=1e-12, atol=1e-14)
    for a, b in zip(block_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_triplet_sorting_path_in_blocks() -> None:
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 2, (30,), generator=gen)
    loss = create_loss("triplet_margin", margin=0.3).double()
    loss.slot_limit = 0
    whole, whole_grads = evaluate(loss, 1 << 30, q, labels)
    blocks, block_grads = evaluate(loss, 64, q, labels)
    torch.testing.assert_close(blocks, whole, rtol=1e-12, atol=0)
    torch.testing.assert_close(block_grads[0], whole_grads[0], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", PAIRWISE)
def test_no_grad_value_and_repeated_or_scaled_backward(name: str) -> None:
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(12, 4, generator=gen, dtype=torch.float64)
    r = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    lq, lr = torch.randint(0, 3, (12,), generator=gen), torch.randint(0, 3, (10,), generator=gen)
    loss = create_loss(name).double()
    with torch.no_grad():
        plain = loss(q, lq, r, lr)
    x = q.clone().requires_grad_(True)
    value = loss(x, lq, r, lr)
    torch.testing.assert_close(value.detach(), plain)
    (3.0 * value).backward(retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    (-0.5 * value).backward(retain_graph=True)  # the stored gradient was scaled in place
    torch.testing.assert_close(x.grad, first * (-0.5 / 3.0))
    x.grad = None
    (0.0 * value).backward()
    assert (x.grad == 0).all()
    # A fresh graph whose first incoming gradient is 0, then a real one.
    y = q.clone().requires_grad_(True)
    fresh = loss(y, lq, r, lr)
    (0.0 * fresh).backward(retain_graph=True)
    y.grad = None
    (3.0 * fresh).backward()
    torch.testing.assert_close(y.grad, first)


def test_double_backward_is_refused() -> None:
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    value = create_loss("info_nce").double()(x, torch.tensor([0, 0, 1, 1, 2, 2]))
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(value, x, create_graph=True)
