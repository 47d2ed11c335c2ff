"""Each proxy (classification) loss against a naive per-row loop from its paper (float64).

The references compute every logit with scalar ops, angles with ``acos`` and the
softmax cross-entropy as ``−log(exp(l_y) / Σ_j exp(l_j))``; values and the gradients
with respect to the embeddings and the class weights must match.
"""

from __future__ import annotations

import math

import pytest
import torch

from crossmodal.losses import (
    AMSoftmaxLoss,
    ArcFaceLoss,
    CosFaceLoss,
    L2SoftmaxLoss,
    LargeMarginSoftmaxLoss,
    NormFaceLoss,
    ProxyCircleLoss,
    SphereFaceLoss,
    SymmetricLoss,
)
from crossmodal.losses.large_margin_softmax import chebyshev_cos_multiple, multiplicative_margin

DT = torch.float64
C, D = 5, 4


def cos_of(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x @ w) / (x.norm() * w.norm())


def cross_entropy(logits: list[torch.Tensor], y: int) -> torch.Tensor:
    stacked = torch.stack(logits)
    return -torch.log(torch.exp(stacked[y]) / torch.exp(stacked).sum())


def psi(theta: torch.Tensor, m: int) -> torch.Tensor:
    k = math.floor(theta.item() * m / math.pi)
    k = min(k, m - 1)
    return (-1) ** k * torch.cos(m * theta) - 2 * k


def naive(loss, x: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    rows = []
    for i in range(x.shape[0]):
        y = int(labels[i])
        logits = []
        for j in range(weight.shape[0]):
            c = cos_of(x[i], weight[j])
            theta = torch.acos(c)
            if isinstance(loss, NormFaceLoss):
                logit = loss.scale * c
            elif isinstance(loss, AMSoftmaxLoss):  # CosFace too
                logit = loss.scale * (c - loss.margin * (j == y))
            elif isinstance(loss, ArcFaceLoss):
                if j == y:
                    m = loss.margin
                    inner = torch.cos(theta + m) if theta + m <= math.pi else c - m * math.sin(m)
                    logit = loss.scale * inner
                else:
                    logit = loss.scale * c
            elif isinstance(loss, SphereFaceLoss):  # before its base class, L-Softmax
                if j == y:
                    lam = loss.lambda_
                    logit = x[i].norm() * (lam * c + psi(theta, loss.margin)) / (1 + lam)
                else:
                    logit = x[i].norm() * c
            elif isinstance(loss, LargeMarginSoftmaxLoss):
                scale = x[i].norm() * weight[j].norm()
                if j == y:
                    lam = loss.lambda_
                    logit = scale * (lam * c + psi(theta, loss.margin)) / (1 + lam)
                else:
                    logit = scale * c
            elif isinstance(loss, L2SoftmaxLoss):
                logit = loss.alpha * (x[i] / x[i].norm()) @ weight[j] + loss.bias[j]
            elif isinstance(loss, ProxyCircleLoss):
                continue
            logits.append(logit)
        if isinstance(loss, ProxyCircleLoss):
            m, gamma = loss.m, loss.gamma
            sp = cos_of(x[i], weight[y])
            a_p = torch.relu(1 + m - sp.detach())
            total = sum(
                torch.exp(gamma * torch.relu(sn.detach() + m) * (sn - m))
                for sn in (cos_of(x[i], weight[j]) for j in range(weight.shape[0]) if j != y)
            )
            rows.append(torch.log(1 + total * torch.exp(-gamma * a_p * (sp - (1 - m)))))
        else:
            rows.append(cross_entropy(logits, y))
    return torch.stack(rows).mean()


FACTORIES = {
    "normface": lambda: NormFaceLoss(C, D, scale=8.0),
    "am_softmax": lambda: AMSoftmaxLoss(C, D, margin=0.3, scale=10.0),
    "cosface": lambda: CosFaceLoss(C, D, margin=0.2, scale=12.0),
    "arcface": lambda: ArcFaceLoss(C, D, margin=0.4, scale=10.0),
    "arcface_wide_margin": lambda: ArcFaceLoss(C, D, margin=1.6, scale=6.0),
    "large_margin_softmax_m2": lambda: LargeMarginSoftmaxLoss(C, D, margin=2),
    "large_margin_softmax_m4_annealed": lambda: LargeMarginSoftmaxLoss(C, D, margin=4, lambda_=2.0),
    "sphereface_m3": lambda: SphereFaceLoss(C, D, margin=3),
    "sphereface_m4": lambda: SphereFaceLoss(C, D, margin=4, lambda_=0.5),
    "l2_softmax": lambda: L2SoftmaxLoss(C, D, alpha=6.0),
    "proxy_circle": lambda: ProxyCircleLoss(C, D, m=0.25, gamma=8.0),
}


def inputs(seed: int = 0, n: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=gen, dtype=DT)
    labels = torch.randint(0, C, (n,), generator=gen)
    return x, labels


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(11)
    loss = FACTORIES[name]().double()
    if isinstance(loss, L2SoftmaxLoss):
        with torch.no_grad():
            loss.bias.copy_(torch.linspace(-0.5, 0.5, C))
    return loss


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_value_and_gradients_match_the_naive_formula(name: str) -> None:
    loss = build(name)
    x, labels = inputs()
    x_ours = x.clone().requires_grad_(True)
    ours = loss(x_ours, labels)
    ours.backward()
    grad_w_ours = loss.weight.grad.clone()

    weight = loss.weight.detach().clone().requires_grad_(True)
    x_ref = x.clone().requires_grad_(True)
    expected = naive(loss, x_ref, labels, weight)
    expected.backward()
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(grad_w_ours, weight.grad, rtol=1e-7, atol=1e-10)


def test_arcface_fallback_branch_is_exercised() -> None:
    # With m = 1.6 rad, targets with cos θ < −cos m ≈ 0.03 take the cos θ − m sin m branch.
    loss = build("arcface_wide_margin")
    x, labels = inputs()
    cos = loss.cosine(x)
    cos_y = cos[torch.arange(len(labels)), labels]
    wide = cos_y < -math.cos(loss.margin)
    assert wide.any()
    assert (~wide).any()


# ProxyCircleLoss treats its weights α as constants (as the pair form does), so its gradient
# is not the numerical derivative of its value; the naive comparison above covers it.
@pytest.mark.parametrize("name", sorted(set(FACTORIES) - {"proxy_circle"}))
def test_gradcheck(name: str) -> None:
    loss = build(name)
    x, labels = inputs(seed=1, n=5)
    x.requires_grad_(True)
    weight = loss.weight.detach().clone().requires_grad_(True)

    def f(x_: torch.Tensor, w_: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(loss, {"weight": w_}, (x_, labels), strict=False)

    assert torch.autograd.gradcheck(f, (x, weight))


def test_chebyshev_is_cos_of_multiple_angle() -> None:
    theta = torch.linspace(0, math.pi, 101, dtype=DT)
    for m in range(0, 7):
        torch.testing.assert_close(
            chebyshev_cos_multiple(torch.cos(theta), m), torch.cos(m * theta)
        )


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_psi_is_continuous_decreasing_and_cos_m_theta_near_zero(m: int) -> None:
    theta = torch.linspace(0, math.pi, 4001, dtype=DT)
    values = multiplicative_margin(torch.cos(theta), m)
    steps = values[1:] - values[:-1]
    assert (steps <= 1e-12).all()
    assert steps.abs().max() < 0.02  # no jumps at the kπ/m boundaries
    first = theta <= math.pi / m
    torch.testing.assert_close(values[first], torch.cos(m * theta[first]))
    assert values[-1].item() == pytest.approx(1 - 2 * m)


def test_proxy_losses_ignore_the_reference_set_and_symmetric_averages_modalities() -> None:
    loss = build("arcface")
    video, labels = inputs(seed=2)
    music, _ = inputs(seed=3)
    alone = loss(video, labels)
    torch.testing.assert_close(loss(video, labels, music, labels), alone)
    both = SymmetricLoss(loss)(video, labels, music, labels)
    torch.testing.assert_close(both, 0.5 * (alone + loss(music, labels)))


def test_float64_embeddings_with_float32_proxies() -> None:
    loss = NormFaceLoss(C, D)
    x, labels = inputs()
    x.requires_grad_(True)
    value = loss(x, labels)
    assert value.dtype == DT
    value.backward()
    assert loss.weight.grad is not None
    assert loss.weight.grad.dtype == torch.float32


def test_bad_proxy_inputs_raise_clear_errors() -> None:
    loss = NormFaceLoss(C, D)
    x = torch.randn(4, D)
    with pytest.raises(ValueError, match=r"label 5 is outside \[0, 5\)"):
        loss(x, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="label -1"):
        loss(x, torch.tensor([0, -1, 2, 3]))
    with pytest.raises(ValueError, match="embedding_dim=4"):
        loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 3]))
    mask = torch.ones(4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="no miner masks"):
        loss(x, torch.tensor([0, 1, 2, 3]), miner_masks=(mask, mask))
    with pytest.raises(ValueError, match="positive integer"):
        SphereFaceLoss(C, D, margin=1.5)
    with pytest.raises(ValueError, match="num_classes"):
        ArcFaceLoss(1, D)
