"""The losses beyond the seed family (SigLIP, SupCon, hard-negative/debiased InfoNCE,
Smooth-AP, Proxy-Anchor) against naive loops written from their papers' formulas
(float64, one pair or one proxy at a time), unimodal, cross-modal and mined, with
gradient checks."""

from __future__ import annotations

import math

import pytest
import torch

from crossmodal.losses import (
    HardNegativeNCELoss,
    InfoNCELoss,
    ProxyAnchorLoss,
    SupConLoss,
    create_loss,
    loss_kind,
)
from crossmodal.sampling.miners import MultiSimilarityMiner

MODES = ["unimodal", "crossmodal", "mined"]


def inputs(seed: int = 0, n_q: int = 9, n_r: int = 7, classes: int = 3):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(n_q, 5, generator=gen, dtype=torch.float64)
    r = torch.randn(n_r, 5, generator=gen, dtype=torch.float64)
    lq = torch.randint(0, classes, (n_q,), generator=gen)
    lr = torch.randint(0, classes, (n_r,), generator=gen)
    return q, lq, r, lr


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a / a.norm()) @ (b / b.norm())


def pair_sets(q, lq, r, lr, masks, i):
    """The positive and negative reference indices of anchor ``i``, one by one."""
    self_ref = r is None
    n_r = len(q) if self_ref else len(r)
    labels_r = lq if self_ref else lr
    pos, neg = [], []
    for j in range(n_r):
        if self_ref and i == j:
            continue
        same = int(lq[i]) == int(labels_r[j])
        if masks is not None and not bool(masks[0 if same else 1][i, j]):
            continue
        (pos if same else neg).append(j)
    return pos, neg


def check_against_naive(loss, naive, mode: str, seed: int = 0, params: tuple = ()) -> None:
    """Value, input gradients and parameter gradients equal the naive loop's; gradcheck."""
    q, lq, r, lr = inputs(seed)
    masks = MultiSimilarityMiner(epsilon=0.3)(q, lq, r, lr) if mode == "mined" else None
    embs = [q] if mode == "unimodal" else [q, r]
    embs = [e.clone().requires_grad_(True) for e in embs]

    def ours(*e):
        given = (e[0], lq) if len(e) == 1 else (e[0], lq, e[1], lr)
        return loss(*given, miner_masks=masks)

    def reference(*e):
        return naive(e[0], lq, e[1] if len(e) > 1 else None, lr if len(e) > 1 else None, masks)

    value, expected = ours(*embs), reference(*embs)
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    tracked = [*embs, *params]
    got = torch.autograd.grad(value, tracked, allow_unused=True)
    want = torch.autograd.grad(expected, tracked, allow_unused=True)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    assert torch.autograd.gradcheck(ours, tuple(embs))


# --- SigLIP ---------------------------------------------------------------------------


def naive_siglip(q, lq, r, lr, masks, t, b):
    """−1/|B| Σ_i Σ_j log σ(z_ij (t x_i·y_j + b)) over the pairs that are positive or
    negative (SigLIP, eq. 1)."""
    refs = q if r is None else r
    total = q.sum() * 0.0
    for i in range(len(q)):
        pos, neg = pair_sets(q, lq, r, lr, masks, i)
        for j in pos + neg:
            z = 1.0 if j in pos else -1.0
            total = total - torch.log(torch.sigmoid(z * (t * cos(q[i], refs[j]) + b)))
    return total / len(q)


@pytest.mark.parametrize("mode", MODES)
def test_siglip_matches_the_paper_formula(mode: str) -> None:
    loss = create_loss("siglip", temperature_init=3.0, bias_init=-1.5).double()
    loss.chunk_elements = 16  # several row blocks
    t, b = loss.log_temperature, loss.bias

    def naive(q, lq, r, lr, masks):
        return naive_siglip(q, lq, r, lr, masks, t.exp(), b)

    check_against_naive(loss, naive, mode, params=(t, b))


def test_siglip_starts_at_the_paper_init_and_learns_its_parameters() -> None:
    loss = create_loss("siglip")
    assert loss_kind("siglip") == "pairwise"
    torch.testing.assert_close(loss.log_temperature.detach(), torch.tensor(math.log(10.0)))
    torch.testing.assert_close(loss.bias.detach(), torch.tensor(-10.0))
    assert {name for name, _ in loss.named_parameters()} == {"log_temperature", "bias"}
    fixed = create_loss("siglip", learnable=False, temperature_init=3.0, bias_init=-1.5)
    assert not list(fixed.parameters())
    q, lq, r, lr = inputs(2)
    x = q.clone().requires_grad_(True)
    torch.testing.assert_close(
        fixed.double()(x, lq, r, lr),
        naive_siglip(x, lq, r, lr, None, torch.tensor(3.0), torch.tensor(-1.5)),
    )
    assert torch.autograd.gradcheck(lambda e: fixed(e, lq, r, lr), (x,))
    # Symmetric over equal-sized modalities: the double sum is the same both ways.
    q, lq, r, lr = inputs(3, n_q=6, n_r=6)
    torch.testing.assert_close(
        create_loss("siglip", symmetric=True).double()(q, lq, r, lr),
        create_loss("siglip").double()(q, lq, r, lr),
    )


# --- SupCon ---------------------------------------------------------------------------


def naive_supcon(q, lq, r, lr, masks, tau=0.1):
    """Khosla et al. eq. 2 (L_out), averaged over anchors that have a positive."""
    refs = q if r is None else r
    per_anchor = []
    for i in range(len(q)):
        pos, neg = pair_sets(q, lq, r, lr, masks, i)
        if not pos:
            continue
        denominator = sum(torch.exp(cos(q[i], refs[a]) / tau) for a in pos + neg)
        terms = [torch.log(torch.exp(cos(q[i], refs[p]) / tau) / denominator) for p in pos]
        per_anchor.append(-sum(terms) / len(pos))
    return torch.stack(per_anchor).mean() if per_anchor else q.sum() * 0.0


@pytest.mark.parametrize("mode", MODES)
def test_supcon_is_the_supcon_formula(mode: str) -> None:
    loss = create_loss("supcon").double()
    check_against_naive(loss, naive_supcon, mode)


def test_supcon_is_info_nce_with_the_papers_defaults_not_a_copy() -> None:
    loss = create_loss("supcon")
    assert isinstance(loss, InfoNCELoss)
    assert type(loss) is SupConLoss
    assert SupConLoss.evaluate is InfoNCELoss.evaluate  # one implementation
    assert not list(loss.parameters())  # the paper's temperature is fixed
    q, lq, r, lr = inputs(1)
    torch.testing.assert_close(
        loss(q, lq, r, lr), InfoNCELoss(temperature=0.1, learnable=False)(q, lq, r, lr)
    )


# --- hard-negative / debiased InfoNCE -------------------------------------------------


def naive_hard_negative_nce(q, lq, r, lr, masks, tau=0.5, tau_plus=0.1, beta=1.0, floors=None):
    """Robinson et al. (ICLR 2021) eq. 4 with their code's importance weights, per
    positive; β = 0 is Chuang et al.'s debiased loss. ``floors`` counts clamped terms."""
    refs = q if r is None else r
    per_anchor = []
    for i in range(len(q)):
        pos, neg = pair_sets(q, lq, r, lr, masks, i)
        if not pos:
            continue
        n = len(neg)
        terms = []
        for p in pos:
            e_p = torch.exp(cos(q[i], refs[p]) / tau)
            if n == 0:
                terms.append(e_p * 0.0)
                continue
            z = [cos(q[i], refs[j]) / tau for j in neg]
            norm = sum(torch.exp(beta * zj) for zj in z)
            reweighted = sum(n * torch.exp(beta * zj) / norm * torch.exp(zj) for zj in z)
            estimate = (reweighted - tau_plus * n * e_p) / (1 - tau_plus)
            floor = n * math.exp(-1 / tau)
            if floors is not None and float(estimate) < floor:
                floors.append((i, p))
            ng = torch.clamp(estimate, min=floor)
            terms.append(-torch.log(e_p / (e_p + ng)))
        per_anchor.append(sum(terms) / len(pos))
    return torch.stack(per_anchor).mean() if per_anchor else q.sum() * 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("tau", "tau_plus", "beta"),
    [(0.5, 0.1, 1.0), (0.2, 0.0, 0.5), (0.3, 0.2, 0.0), (0.5, 0.0, 0.0)],
)
def test_hard_negative_nce_matches_the_paper_formula(mode, tau, tau_plus, beta) -> None:
    loss = create_loss("hard_negative_nce", temperature=tau, tau_plus=tau_plus, beta=beta)

    def naive(q, lq, r, lr, masks):
        return naive_hard_negative_nce(q, lq, r, lr, masks, tau, tau_plus, beta)

    check_against_naive(loss, naive, mode)


def test_hard_negative_nce_floor_is_reached_and_differentiable() -> None:
    # A large τ⁺ with close positives drives the debiased estimate below the floor.
    q, lq, r, lr = inputs(2)
    r = r.clone()
    for j in range(len(r)):
        match = (lq == lr[j]).nonzero()
        if len(match):
            r[j] = q[match[0, 0]] + 0.05 * r[j]
    floors: list = []
    expected = naive_hard_negative_nce(q, lq, r, lr, None, 0.5, 0.6, 1.0, floors)
    assert floors, "the case must exercise the clamp"
    loss = HardNegativeNCELoss(temperature=0.5, tau_plus=0.6, beta=1.0)
    torch.testing.assert_close(loss(q, lq, r, lr), expected, rtol=1e-10, atol=1e-12)
    x = q.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: loss(e, lq, r, lr), (x,))


def test_hard_negative_nce_without_debiasing_or_weighting_is_info_nce() -> None:
    # One positive per anchor: τ⁺ = β = 0 is InfoNCE (the positive vs the negatives).
    q, _, r, _ = inputs(4, n_q=6, n_r=6)
    labels = torch.arange(6)
    plain = InfoNCELoss(temperature=0.5, learnable=False)(q, labels, r, labels)
    torch.testing.assert_close(
        HardNegativeNCELoss(temperature=0.5, tau_plus=0.0, beta=0.0)(q, labels, r, labels), plain
    )
    with pytest.raises(ValueError, match="tau_plus"):
        HardNegativeNCELoss(tau_plus=1.0)


# --- Smooth-AP ------------------------------------------------------------------------


def naive_smooth_ap(q, lq, r, lr, masks, tau=0.01):
    """Brown et al. (ECCV 2020) eq. 8-9: 1 − mean over queries of the smoothed AP."""
    refs = q if r is None else r

    def g(x):
        return torch.sigmoid(x / tau)

    aps = []
    for i in range(len(q)):
        pos, neg = pair_sets(q, lq, r, lr, masks, i)
        if not pos:
            continue
        s = {j: cos(q[i], refs[j]) for j in pos + neg}
        ap = 0.0
        for p in pos:
            rank_pos = 1 + sum((g(s[j] - s[p]) for j in pos if j != p), q.sum() * 0.0)
            rank_all = rank_pos + sum((g(s[j] - s[p]) for j in neg), q.sum() * 0.0)
            ap = ap + rank_pos / rank_all
        aps.append(ap / len(pos))
    return 1 - torch.stack(aps).mean() if aps else q.sum() * 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tau", [0.01, 0.3])
def test_smooth_ap_matches_the_paper_formula(mode: str, tau: float) -> None:
    loss = create_loss("smooth_ap", temperature=tau)

    def naive(q, lq, r, lr, masks):
        return naive_smooth_ap(q, lq, r, lr, masks, tau)

    check_against_naive(loss, naive, mode)


def test_smooth_ap_tends_to_the_true_ap() -> None:
    # With a tiny τ the sigmoid is the step function: the loss is 1 − exact mAP.
    q, lq, r, lr = inputs(5)
    sim = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(r, dim=1).T
    aps = []
    for i in range(len(q)):
        relevant = (lr == lq[i])[sim[i].argsort(descending=True)]
        if not relevant.any():
            continue
        hits = relevant.cumsum(0)
        ranks = torch.arange(1, len(relevant) + 1)
        aps.append((hits / ranks)[relevant].mean())
    exact = 1 - torch.stack(aps).mean()
    value = create_loss("smooth_ap", temperature=1e-6)(q, lq, r, lr)
    torch.testing.assert_close(value, exact.double(), rtol=0, atol=1e-6)


# --- Proxy-Anchor ---------------------------------------------------------------------


def naive_proxy_anchor(x, labels, proxies, alpha=32.0, delta=0.1):
    """Kim et al. (CVPR 2020) eq. 4, one proxy at a time."""
    pos_terms, neg_terms = [], []
    for c in range(len(proxies)):
        pos_sum, neg_sum, has_pos = x.sum() * 0.0, x.sum() * 0.0, False
        for k in range(len(x)):
            s = cos(x[k], proxies[c])
            if int(labels[k]) == c:
                pos_sum = pos_sum + torch.exp(-alpha * (s - delta))
                has_pos = True
            else:
                neg_sum = neg_sum + torch.exp(alpha * (s + delta))
        if has_pos:
            pos_terms.append(torch.log(1 + pos_sum))
        neg_terms.append(torch.log(1 + neg_sum))
    return sum(pos_terms) / len(pos_terms) + sum(neg_terms) / len(proxies)


@pytest.mark.parametrize(("alpha", "delta"), [(32.0, 0.1), (4.0, 0.3)])
def test_proxy_anchor_matches_the_paper_formula(alpha: float, delta: float) -> None:
    torch.manual_seed(0)
    loss = create_loss("proxy_anchor", num_classes=5, embedding_dim=5, alpha=alpha, delta=delta)
    loss = loss.double()
    assert isinstance(loss, ProxyAnchorLoss)
    assert loss_kind("proxy_anchor") == "proxy"
    q, lq, r, lr = inputs(6)  # labels 0..2 of 5 classes: proxies 3, 4 have no positive
    x = q.clone().requires_grad_(True)
    value = loss(x, lq)
    expected = naive_proxy_anchor(x, lq, loss.weight, alpha, delta)
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    got = torch.autograd.grad(value, [x, loss.weight])
    want = torch.autograd.grad(expected, [x, loss.weight])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    assert torch.autograd.gradcheck(lambda e: loss(e, lq), (x,))
    assert torch.autograd.gradcheck(
        lambda w: naive_proxy_anchor(q, lq, w, alpha, delta), (loss.weight,)
    )
    # Cross-modal: both modalities against the same proxies, averaged.
    y = r.clone().requires_grad_(True)
    both = create_loss("proxy_anchor", symmetric=True, num_classes=5, embedding_dim=5)
    both = both.double()
    proxies = both.loss.weight
    torch.testing.assert_close(
        both(x, lq, y, lr),
        0.5 * (naive_proxy_anchor(x, lq, proxies) + naive_proxy_anchor(y, lr, proxies)),
    )
