"""The two-part embedding (sync + vibe): the stored vector, and query weighting that
gives the blended score ``(1−α)·sync + α·vibe`` for any α from the same stored vectors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from crossmodal.embedding_layout import EmbeddingLayout


def _parts(n: int, sync_dim: int, vibe_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    sync = F.normalize(torch.randn(n, sync_dim, generator=gen, dtype=torch.float64), dim=1)
    vibe = F.normalize(torch.randn(n, vibe_dim, generator=gen, dtype=torch.float64), dim=1)
    return sync, vibe


def _naive_blend(q_sync, q_vibe, g_sync, g_vibe, alpha: float) -> torch.Tensor:
    scores = torch.empty(len(q_sync), len(g_sync), dtype=torch.float64)
    for i in range(len(q_sync)):
        for j in range(len(g_sync)):
            s = sum(float(a) * float(b) for a, b in zip(q_sync[i], g_sync[j], strict=True))
            v = sum(float(a) * float(b) for a, b in zip(q_vibe[i], g_vibe[j], strict=True))
            scores[i, j] = (1 - alpha) * s + alpha * v
    return scores


@pytest.mark.parametrize("default", [0.2, 0.5, 0.8])
def test_stored_vectors_are_unit_norm_and_split_back_into_their_parts(default: float) -> None:
    layout = EmbeddingLayout(6, 4, default)
    sync, vibe = _parts(5, 6, 4, 0)
    stored = layout.combine(sync, vibe)
    assert stored.shape == (5, layout.dim) == (5, 10)
    torch.testing.assert_close(stored.norm(dim=1), torch.ones(5, dtype=torch.float64))
    got_sync, got_vibe = layout.split(stored)
    torch.testing.assert_close(got_sync, sync)
    torch.testing.assert_close(got_vibe, vibe)
    # Unweighted, the stored vectors score at the default blend.
    torch.testing.assert_close(
        stored @ stored.T, _naive_blend(sync, vibe, sync, vibe, default), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("default", [0.3, 0.5])
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_weighted_query_gives_the_blended_score_of_a_naive_loop(
    default: float, alpha: float
) -> None:
    layout = EmbeddingLayout(6, 4, default)
    q_sync, q_vibe = _parts(4, 6, 4, 1)
    g_sync, g_vibe = _parts(7, 6, 4, 2)
    stored = layout.combine(g_sync, g_vibe)
    query = layout.weight_query(layout.combine(q_sync, q_vibe), alpha)
    expected = _naive_blend(q_sync, q_vibe, g_sync, g_vibe, alpha)
    torch.testing.assert_close(query @ stored.T, expected, rtol=1e-12, atol=1e-12)


def test_blend_zero_ranks_by_sync_and_one_by_vibe() -> None:
    layout = EmbeddingLayout(6, 4, 0.5)
    q_sync, q_vibe = _parts(3, 6, 4, 3)
    g_sync, g_vibe = _parts(9, 6, 4, 4)
    stored = layout.combine(g_sync, g_vibe)
    query = layout.combine(q_sync, q_vibe)
    by_sync = (layout.weight_query(query, 0.0) @ stored.T).argsort(dim=1, descending=True)
    by_vibe = (layout.weight_query(query, 1.0) @ stored.T).argsort(dim=1, descending=True)
    assert torch.equal(by_sync, (q_sync @ g_sync.T).argsort(dim=1, descending=True))
    assert torch.equal(by_vibe, (q_vibe @ g_vibe.T).argsort(dim=1, descending=True))
    assert not torch.equal(by_sync, by_vibe)


def test_one_part_layouts_ignore_the_blend_and_bad_values_are_refused() -> None:
    layout = EmbeddingLayout.from_dict(None, 8)
    assert (layout.dim, layout.has_vibe) == (8, False)
    query = torch.randn(2, 8)
    assert torch.equal(layout.weight_query(query, 1.0), query)
    assert EmbeddingLayout.from_dict(EmbeddingLayout(6, 4, 0.3).to_dict(), 10) == EmbeddingLayout(
        6, 4, 0.3
    )
    with pytest.raises(ValueError, match=r"default blend of a vibe part must be in \(0, 1\)"):
        EmbeddingLayout(6, 4, 1.0)
    with pytest.raises(ValueError, match=r"blend must be in \[0, 1\]"):
        EmbeddingLayout(6, 4, 0.5).weight_query(torch.randn(1, 10), 1.5)
    assert math.isclose(EmbeddingLayout(6, 4, 0.5).blend, 0.5)


def _naive_gated(q_sync, q_vibe, g_sync, g_vibe, alpha: float, tau: float) -> torch.Tensor:
    scores = torch.empty(len(q_sync), len(g_sync), dtype=torch.float64)
    for i in range(len(q_sync)):
        for j in range(len(g_sync)):
            s = sum(float(a) * float(b) for a, b in zip(q_sync[i], g_sync[j], strict=True))
            v = sum(float(a) * float(b) for a, b in zip(q_vibe[i], g_vibe[j], strict=True))
            scores[i, j] = (1 - alpha) * max(0.0, s - tau) / (1 - tau) + alpha * v
    return scores


@pytest.mark.parametrize("alpha", [None, 0.0, 0.3, 1.0])
def test_gated_scores_match_a_naive_loop(alpha: float | None) -> None:
    layout = EmbeddingLayout(6, 4, 0.2, gate=0.1)
    q_sync, q_vibe = _parts(4, 6, 4, 3)
    g_sync, g_vibe = _parts(7, 6, 4, 4)
    got = layout.scores(layout.combine(q_sync, q_vibe), layout.combine(g_sync, g_vibe), alpha)
    a = 0.2 if alpha is None else alpha
    # α 0 is the plain sync similarity (the gate only mixes the parts).
    expected = (
        _naive_blend(q_sync, q_vibe, g_sync, g_vibe, 0.0)
        if a == 0.0
        else _naive_gated(q_sync, q_vibe, g_sync, g_vibe, a, 0.1)
    )
    torch.testing.assert_close(got, expected)
    # Without a gate the score is the linear blend, i.e. the weighted query's dot product.
    plain = EmbeddingLayout(6, 4, 0.2)
    linear = plain.scores(plain.combine(q_sync, q_vibe), plain.combine(g_sync, g_vibe), alpha)
    torch.testing.assert_close(linear, _naive_blend(q_sync, q_vibe, g_sync, g_vibe, a))


def test_the_gate_puts_a_sure_match_first_and_orders_the_rest_by_vibe() -> None:
    # Gallery: 0 = the query's own piece (sync 0.9, other mood); 1..3 = no match, their
    # sync noise (0.3, -0.2, 0.25) below the gate, vibe 0.2, 0.9, 0.5. Linear at α 0.3
    # orders the non-matches by their noise; gated, by their vibe.
    sync = torch.tensor([0.9, 0.3, -0.2, 0.25], dtype=torch.float64)
    vibe = torch.tensor([-0.1, 0.2, 0.9, 0.5], dtype=torch.float64)
    gated = EmbeddingLayout(6, 4, 0.3, gate=0.4).combine_scores(sync, vibe)
    linear = EmbeddingLayout(6, 4, 0.3).combine_scores(sync, vibe)
    assert gated.argsort(descending=True).tolist() == [0, 2, 3, 1]
    # linear: 0.60, 0.27, 0.13, 0.325 — the best vibe (2) comes last
    assert linear.argsort(descending=True).tolist() == [0, 3, 1, 2]


def test_calibrate_gate_is_the_quantile_of_non_matching_sync_similarities() -> None:
    import numpy as np

    from crossmodal.embedding_layout import calibrate_gate

    layout = EmbeddingLayout(6, 4, 0.2)
    v_sync, v_vibe = _parts(9, 6, 4, 5)
    m_sync, m_vibe = _parts(9, 6, 4, 6)
    tracks = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7])
    got = calibrate_gate(
        layout.combine(v_sync, v_vibe), layout.combine(m_sync, m_vibe), tracks, layout
    )
    others = [
        float(v_sync[i] @ m_sync[j]) for i in range(9) for j in range(9) if tracks[i] != tracks[j]
    ]
    assert len(others) == 81 - 11
    same = [
        float(v_sync[i] @ m_sync[j]) for i in range(9) for j in range(9) if tracks[i] == tracks[j]
    ]
    expected = min(float(np.quantile(others, 0.99)), float(np.quantile(same, 0.1)))
    assert got == pytest.approx(expected, abs=1e-6)
    assert calibrate_gate(v_sync, m_sync, tracks, EmbeddingLayout(6)) is None
    one = torch.zeros(9, dtype=torch.long)
    assert (
        calibrate_gate(layout.combine(v_sync, v_vibe), layout.combine(m_sync, m_vibe), one, layout)
        is None
    )


def test_gate_round_trips_and_bad_gates_are_refused() -> None:
    layout = EmbeddingLayout(6, 4, 0.2, gate=0.35)
    assert EmbeddingLayout.from_dict(layout.to_dict(), 10) == layout
    assert EmbeddingLayout.from_dict({"sync_dim": 6, "vibe_dim": 4, "blend": 0.2}, 10).gate is None
    with pytest.raises(ValueError, match="sync gate"):
        EmbeddingLayout(6, 4, 0.2, gate=1.0)
    with pytest.raises(ValueError, match="sync gate"):
        EmbeddingLayout(6, 0, 0.0, gate=0.3)


def test_calibrate_gate_subsamples_large_validation_splits(monkeypatch) -> None:
    import crossmodal.embedding_layout as el

    layout = EmbeddingLayout(6, 4, 0.2)
    v_sync, v_vibe = _parts(40, 6, 4, 8)
    m_sync, m_vibe = _parts(40, 6, 4, 9)
    video, music = layout.combine(v_sync, v_vibe), layout.combine(m_sync, m_vibe)
    tracks = torch.arange(40)
    full = el.calibrate_gate(video, music, tracks, layout)
    monkeypatch.setattr(el, "MAX_GATE_CLIPS", 16)
    sub = el.calibrate_gate(video, music, tracks, layout)
    keep = torch.randperm(40, generator=torch.Generator().manual_seed(0))[:16].sort().values
    expected = el.calibrate_gate(video[keep], music[keep], tracks[keep], layout)
    assert sub == expected
    assert sub != full


def test_the_gate_for_many_windows_keeps_the_chance_of_a_pass() -> None:
    # Non-matching window similarities ~ N(0, σ) with τ their GATE_QUANTILE quantile (q):
    # the best of W of them passes τ_W with chance about 1 − WINDOW_ITEM_QUANTILE (1 %,
    # Monte Carlo), where it would pass τ with chance 1 − q^W.
    from statistics import NormalDist

    from crossmodal.embedding_layout import GATE_QUANTILE, WINDOW_ITEM_QUANTILE

    chance = 1.0 - WINDOW_ITEM_QUANTILE
    sigma = 0.25
    tau = sigma * NormalDist().inv_cdf(GATE_QUANTILE)
    layout = EmbeddingLayout(6, 4, 0.2, gate=tau)
    assert layout.gate_for_windows(1) == tau
    # Two windows pass τ by chance less often than 1 %: the gate stays τ.
    assert chance > 1.0 - GATE_QUANTILE**2
    assert layout.gate_for_windows(2) == tau
    gates = [layout.gate_for_windows(w) for w in (1, 2, 8, 45)]
    assert gates == sorted(gates)
    gen = torch.Generator().manual_seed(0)
    draws = 100_000
    for windows in (8, 45):
        best = (sigma * torch.randn(draws, windows, generator=gen, dtype=torch.float64)).amax(1)
        passed = float((best > layout.gate_for_windows(windows)).double().mean())
        # ±4 binomial standard deviations around 1 %.
        spread = 4.0 * (chance * (1.0 - chance) / draws) ** 0.5
        assert abs(passed - chance) < spread, (windows, passed)
        # The fixed gate τ lets the best of W pass with chance 1 − q^W (closed form).
        fixed = float((best > tau).double().mean())
        expected = 1.0 - GATE_QUANTILE**windows
        assert abs(fixed - expected) < 4.0 * (expected * (1.0 - expected) / draws) ** 0.5
        if windows == 45:
            assert fixed > 5 * chance  # what the raised gate saves
    # A two-minute item (30 windows) whose matching window scores 0.985 keeps its sync
    # credit under a gate of 0.754 at q = 0.998 (a pure q-tail rule put it at the cap).
    tight = EmbeddingLayout(6, 4, 0.2, gate=0.754, gate_quantile=0.998)
    assert tight.gate_for_windows(30) < 0.9
    # A gate at or below 0 is not raised; a high one is capped below 1.
    assert EmbeddingLayout(6, 4, 0.2, gate=-0.1).gate_for_windows(30) == -0.1
    assert EmbeddingLayout(6, 4, 0.2, gate=0.9).gate_for_windows(1000) == 0.99


def test_a_weak_sync_part_gets_a_gate_that_keeps_nine_true_pairs_in_ten() -> None:
    from crossmodal.embedding_layout import calibrate_gate

    # Strong sync (pairs at 1, others around 0): the gate is the non-pair quantile.
    # Weak sync (pairs barely above others): the gate drops to the pairs' 10th percentile.
    layout = EmbeddingLayout(6, 4, 0.2)
    gen = torch.Generator().manual_seed(11)
    n = 60
    base = F.normalize(torch.randn(n, 6, generator=gen, dtype=torch.float64), dim=1)
    vibe = F.normalize(torch.randn(n, 4, generator=gen, dtype=torch.float64), dim=1)
    tracks = torch.arange(n)
    strong = calibrate_gate(layout.combine(base, vibe), layout.combine(base, vibe), tracks, layout)
    noise = F.normalize(torch.randn(n, 6, generator=gen, dtype=torch.float64), dim=1)
    weak_music = F.normalize(base + 1.5 * noise, dim=1)
    weak = calibrate_gate(
        layout.combine(base, vibe), layout.combine(weak_music, vibe), tracks, layout
    )
    pairs = (base * weak_music).sum(1)
    assert strong < 0.99
    assert float((pairs < weak).double().mean()) <= 0.1 + 1 / n
    assert weak < strong


def test_a_gate_keeps_the_quantile_it_was_calibrated_at() -> None:
    from statistics import NormalDist

    from crossmodal.embedding_layout import GATE_QUANTILE
    from crossmodal.model import ModelConfig

    layout = EmbeddingLayout(6, 4, 0.2, gate=0.5)
    assert layout.gate_quantile == GATE_QUANTILE
    assert EmbeddingLayout.from_dict(layout.to_dict(), 10) == layout
    # A layout or model file from before the quantile was recorded: calibrated at 0.99.
    old = EmbeddingLayout.from_dict({"sync_dim": 6, "vibe_dim": 4, "blend": 0.2, "gate": 0.5}, 10)
    assert old.gate_quantile == 0.99
    config = {"embed_dim": 6, "vibe_dim": 4, "blend": 0.2, "sync_gate": 0.5}
    assert ModelConfig.from_dict(config).layout == old
    z = NormalDist().inv_cdf
    for lay, q in ((layout, GATE_QUANTILE), (old, 0.99)):
        expected = max(0.5, 0.5 / z(q) * z(0.99 ** (1 / 30)))
        assert lay.gate_for_windows(30) == pytest.approx(expected, rel=1e-12)
    assert layout.gate_for_windows(30) < old.gate_for_windows(30)  # σ = τ / z(q) is smaller
    with pytest.raises(ValueError, match="quantile must be in"):
        EmbeddingLayout(6, 4, 0.2, gate=0.5, gate_quantile=1.0)
