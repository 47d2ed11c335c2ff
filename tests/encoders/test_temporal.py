"""Temporal pooling and temporal convolutions against loop-based references."""

from __future__ import annotations

import math

import pytest
import torch

from crossmodal.encoders.temporal import (
    TEMPORAL_POOLS,
    AttentionPool,
    MeanPool,
    TemporalConvNet,
    TemporalTransformer,
    TimeBinsPool,
    build_temporal_pool,
)
from crossmodal.registry import UnknownNameError


def test_mean_pool() -> None:
    x = torch.randn(3, 5, 4)
    torch.testing.assert_close(MeanPool(4)(x), x.sum(dim=1) / 5)


def test_attention_pool_matches_the_formula_loop() -> None:
    torch.manual_seed(0)
    pool = AttentionPool(6, num_heads=2)
    with torch.no_grad():
        pool.query.normal_()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    pool = pool.double()
    query = pool.query.detach()
    expected = torch.zeros(2, 6, dtype=torch.float64)
    d = 3
    for b in range(2):
        for h in range(2):
            scores = [
                sum(x[b, t, h * d + k].item() * query[h, k].item() for k in range(d)) / math.sqrt(d)
                for t in range(5)
            ]
            top = max(scores)
            weights = [math.exp(s - top) for s in scores]
            total = sum(weights)
            for k in range(d):
                expected[b, h * d + k] = sum(
                    weights[t] / total * x[b, t, h * d + k].item() for t in range(5)
                )
    torch.testing.assert_close(pool(x), expected)
    torch.testing.assert_close(pool.weights(x).sum(dim=1), torch.ones(2, 2, dtype=torch.float64))


def test_attention_pool_starts_as_the_mean() -> None:
    x = torch.randn(2, 7, 8)
    torch.testing.assert_close(AttentionPool(8, 4)(x), x.mean(dim=1))
    with pytest.raises(ValueError, match="not divisible"):
        AttentionPool(6, 4)


def test_time_bins_match_adaptive_bin_edges_loop() -> None:
    x = torch.randn(2, 10, 3)
    pool = TimeBinsPool(3, num_bins=4)
    out = pool(x)
    assert out.shape == (2, 12)
    assert pool.output_dim == 12
    for i in range(4):
        start, end = math.floor(i * 10 / 4), math.ceil((i + 1) * 10 / 4)
        for c in range(3):
            torch.testing.assert_close(out[:, c * 4 + i], x[:, start:end, c].mean(dim=1))
    with pytest.raises(ValueError, match="cannot fill"):
        pool(torch.randn(1, 3, 3))


def test_time_bins_tell_shifted_rhythms_apart_where_the_mean_cannot() -> None:
    pulse = torch.zeros(1, 12, 1)
    pulse[0, ::4, 0] = 1.0
    shifted = torch.roll(pulse, 2, dims=1)
    torch.testing.assert_close(MeanPool(1)(pulse), MeanPool(1)(shifted))
    assert not torch.allclose(TimeBinsPool(1, 6)(pulse), TimeBinsPool(1, 6)(shifted))


def test_transformer_is_order_aware_only_through_its_position_embeddings() -> None:
    torch.manual_seed(0)
    pool = TemporalTransformer(8, max_len=6, num_layers=2, num_heads=2).eval()
    x = torch.randn(2, 6, 8)
    reversed_x = x.flip(1)
    with torch.no_grad():
        assert pool(x).shape == (2, 8)
        assert not torch.allclose(pool(x), pool(reversed_x), atol=1e-5)
        pool.position.zero_()
        # attention + mean are permutation invariant without positions
        torch.testing.assert_close(pool(x), pool(reversed_x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="longer than max_len"):
        pool(torch.randn(1, 7, 8))


@pytest.mark.parametrize(("layers", "kernel"), [(1, 3), (3, 3), (2, 5)])
def test_temporal_conv_net_keeps_length_and_has_the_documented_receptive_field(
    layers: int, kernel: int
) -> None:
    torch.manual_seed(0)
    net = TemporalConvNet(3, 8, num_layers=layers, kernel_size=kernel, out_dim=5).eval()
    x = torch.randn(1, 3, 64)
    with torch.no_grad():
        base = net(x)
        bumped = x.clone()
        bumped[0, :, 32] += 1.0
        changed = (net(bumped) - base).abs().amax(dim=1)[0] > 1e-6
    assert base.shape == (1, 5, 64)
    field = 1 + (kernel - 1) * (2**layers - 1)
    positions = changed.nonzero().flatten()
    assert positions.min().item() == 32 - (field - 1) // 2
    assert positions.max().item() == 32 + (field - 1) // 2


def test_builder_knows_every_kind_and_rejects_others() -> None:
    for kind, dim in (("mean", 8), ("attention", 8), ("transformer", 8), ("bins", 32)):
        pool = build_temporal_pool(kind, 8, num_steps=10, num_bins=4)
        assert pool.output_dim == dim
        assert pool(torch.randn(2, 10, 8)).shape == (2, dim)
    assert TEMPORAL_POOLS.names() == ["attention", "bins", "mean", "transformer"]
    with pytest.raises(
        UnknownNameError,
        match=r"unknown temporal pooling 'max'.*attention, bins, mean, transformer",
    ):
        build_temporal_pool("max", 8, 10)
