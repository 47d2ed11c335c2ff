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
