"""The losses beyond the seed family against pytorch-metric-learning (PML, test-only)
where PML has them: Proxy-Anchor, SupCon, Smooth-AP. PML gets a distinct ``ref_labels``
tensor (see test_pml_parity.py for the identity trap)."""

from __future__ import annotations

import pytest
import torch

from crossmodal.losses import ProxyAnchorLoss, SmoothAPLoss, SupConLoss

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def values_and_grads(fn, *tensors: torch.Tensor):
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    value = fn(*leaves)
    return value, torch.autograd.grad(value, leaves)


def assert_same(ours_fn, pml_fn, *tensors: torch.Tensor, rtol: float = 1e-9) -> None:
    ours, ours_grads = values_and_grads(ours_fn, *tensors)
    theirs, their_grads = values_and_grads(pml_fn, *tensors)
    assert theirs.item() != 0.0, "PML must compute a real value here"
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=rtol, atol=1e-12)
    for a, b in zip(ours_grads, their_grads, strict=True):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=rtol * 100, atol=1e-9)


@pytest.mark.parametrize(("alpha", "delta"), [(32.0, 0.1), (8.0, 0.25)])
def test_proxy_anchor_matches_pml(alpha: float, delta: float) -> None:
    torch.manual_seed(3)
    pml = pml_losses.ProxyAnchorLoss(7, 8, margin=delta, alpha=alpha).double()
    ours = ProxyAnchorLoss(7, 8, alpha=alpha, delta=delta).double()
    with torch.no_grad():
        ours.weight.copy_(pml.proxies)
    emb, labels = randn(20, 8, seed=4), torch.arange(20) % 5  # classes 5, 6 absent
    a, b = emb.clone().requires_grad_(True), emb.clone().requires_grad_(True)
    value, expected = ours(a, labels), pml(b, labels)
    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-12)
    value.backward()
    expected.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(ours.weight.grad, pml.proxies.grad, rtol=1e-7, atol=1e-10)


def test_supcon_matches_pml_unimodal_and_crossmodal() -> None:
    ours, pml = SupConLoss(), pml_losses.SupConLoss(temperature=0.1)
    labels = torch.arange(6).repeat_interleave(3)
    ref_labels = labels[torch.randperm(18, generator=torch.Generator().manual_seed(1))]
    emb, ref = randn(18, 8, seed=5), randn(18, 8, seed=6)
    assert_same(lambda e: ours(e, labels), lambda e: pml(e, labels), emb)
    assert_same(
        lambda e, r: ours(e, labels, r, ref_labels),
        lambda e, r: pml(e, labels, ref_emb=r, ref_labels=ref_labels.clone()),
        emb,
        ref,
    )


def test_smooth_ap_matches_pml_with_the_query_in_its_gallery() -> None:
    # PML (after the paper's code) ranks each query among the whole batch, itself
    # included (a positive that always ranks first); ours excludes it when called on one
    # set. Passing the batch explicitly as the references keeps the diagonal as a
    # positive (docs/losses.md), which is PML's setting. PML accumulates AP in float32.
    labels = torch.arange(4).repeat_interleave(4)
    emb = randn(16, 8, seed=7)
    for tau in (0.01, 0.1):
        ours, pml = SmoothAPLoss(temperature=tau), pml_losses.SmoothAPLoss(temperature=tau)
        assert_same(
            lambda e, o=ours: o(e, labels, e, labels),
            lambda e, p=pml: p(e, labels),
            emb,
            rtol=1e-6,
        )
