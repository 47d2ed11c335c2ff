"""The autograd path for adding a pairwise loss, on its worked example (binomial
deviance, the file docs/losses.md shows): a naive loop from the paper's formula, a
gradient check, and the documentation showing the very code that is tested."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import pytest
import torch

from crossmodal.losses import (
    AutogradPairwiseLoss,
    BinomialDevianceLoss,
    InfoNCELoss,
    create_loss,
    loss_kind,
)
from crossmodal.losses import binomial_deviance as example_module
from crossmodal.sampling.miners import MultiSimilarityMiner

DOCS = Path(__file__).resolve().parents[2] / "docs" / "losses.md"


def naive_binomial_deviance(q, lq, r=None, lr=None, masks=None, alpha=2.0, beta=0.5, cost=25.0):
    """One pair at a time, from the formula (float64)."""
    self_ref = r is None
    if self_ref:
        r, lr = q, lq
    pos_terms, neg_terms = [], []
    for i in range(len(q)):
        for j in range(len(r)):
            if self_ref and i == j:
                continue
            s = (q[i] / q[i].norm()) @ (r[j] / r[j].norm())
            same = int(lq[i]) == int(lr[j])
            if masks is not None and not bool(masks[0 if same else 1][i, j]):
                continue
            if same:
                pos_terms.append(torch.log(1 + torch.exp(-alpha * (s - beta))))
            else:
                neg_terms.append(torch.log(1 + torch.exp(alpha * cost * (s - beta))))
    zero = q.sum() * 0.0
    pos = torch.stack(pos_terms).mean() if pos_terms else zero
    neg = torch.stack(neg_terms).mean() if neg_terms else zero
    return pos + neg


def inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    r = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    lq, lr = torch.randint(0, 3, (9,), generator=gen), torch.randint(0, 3, (7,), generator=gen)
    return q, lq, r, lr


@pytest.mark.parametrize("mode", ["unimodal", "crossmodal", "mined"])
def test_binomial_deviance_matches_a_naive_loop_and_gradcheck(mode: str) -> None:
    q, lq, r, lr = inputs()
    loss = create_loss("binomial_deviance", alpha=1.5, neg_cost=10.0)
    assert isinstance(loss, AutogradPairwiseLoss)
    assert loss_kind("binomial_deviance") == "pairwise"
    masks = MultiSimilarityMiner(epsilon=0.3)(q, lq, r, lr) if mode == "mined" else None
    args = (q, lq) if mode == "unimodal" else (q, lq, r, lr)

    def ours(*embs):
        given = (embs[0], lq) if len(embs) == 1 else (embs[0], lq, embs[1], lr)
        return loss(*given, miner_masks=masks)

    def naive(*embs):
        if len(embs) == 1:
            return naive_binomial_deviance(embs[0], lq, alpha=1.5, cost=10.0)
        return naive_binomial_deviance(embs[0], lq, embs[1], lr, masks, alpha=1.5, cost=10.0)

    embs = [args[0]] if mode == "unimodal" else [args[0], args[2]]
    embs = [e.clone().requires_grad_(True) for e in embs]
    torch.testing.assert_close(ours(*embs), naive(*embs), rtol=1e-12, atol=1e-14)
    ours(*embs).backward()
    ours_grads = [e.grad.clone() for e in embs]
    for e in embs:
        e.grad = None
    naive(*embs).backward()
    for a, b in zip(ours_grads, [e.grad for e in embs], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(ours, tuple(embs))


def test_binomial_deviance_without_negatives_is_a_connected_zero_side() -> None:
    q = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    value = BinomialDevianceLoss()(q, torch.zeros(4, dtype=torch.long))
    expected = naive_binomial_deviance(q, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(value, expected)
    value.backward()
    assert torch.isfinite(q.grad).all()


def test_autograd_and_blockwise_paths_agree() -> None:
    """InfoNCE written in a few lines on the autograd path equals the closed-form one."""

    class AutogradInfoNCE(AutogradPairwiseLoss):
        def similarity_loss(self, sim, pos, neg):
            logits = (sim / 0.1).masked_fill(~(pos | neg), -math.inf)
            log_softmax = logits - torch.logsumexp(logits, dim=1, keepdim=True)
            per_anchor = -(log_softmax.masked_fill(~pos, 0.0)).sum(1) / pos.sum(1).clamp_min(1)
            valid = pos.any(1)
            return (per_anchor * valid).sum() / valid.sum().clamp_min(1)

    q, lq, r, lr = inputs(1)
    for args in ((q, lq), (q, lq, r, lr)):
        x = args[0].clone().requires_grad_(True)
        y = x.detach().clone().requires_grad_(True)
        a = AutogradInfoNCE()(x, *args[1:])
        b = InfoNCELoss(temperature=0.1, learnable=False)(y, *args[1:])
        torch.testing.assert_close(a, b)
        a.backward()
        b.backward()
        torch.testing.assert_close(x.grad, y.grad)


def test_the_documentation_shows_the_tested_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## How to add a loss", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert inspect.getsource(example_module) in blocks
