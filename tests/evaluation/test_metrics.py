"""Retrieval metrics against hand-computed examples and a naive sort-based reference."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from crossmodal.evaluation import (
    category_metrics,
    chance_recall,
    instance_metrics,
    kmeans_nmi,
    normalized_mutual_information,
    rank_queries,
)


def naive_ranking(scores: list[float], relevant: list[bool]) -> list[bool]:
    """Relevance in ranked order: score descending, non-relevant first among equal scores
    (pessimistic ties)."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], relevant[j]))
    return [relevant[j] for j in order]


def naive_metrics(scores: torch.Tensor, q_keys: list[int], g_keys: list[int]) -> dict:
    first_ranks, aps, map_rs = [], [], []
    for qi, qk in enumerate(q_keys):
        rel = [gk == qk for gk in g_keys]
        if not any(rel):
            continue
        ranked = naive_ranking(scores[qi].tolist(), rel)
        first_ranks.append(ranked.index(True) + 1)
        hits, precisions = 0, []
        for pos, is_rel in enumerate(ranked, start=1):
            if is_rel:
                hits += 1
                precisions.append(hits / pos)
        aps.append(sum(precisions) / len(precisions))
        r = sum(rel)
        hits, total = 0, 0.0
        for pos, is_rel in enumerate(ranked[:r], start=1):
            if is_rel:
                hits += 1
                total += hits / pos
        map_rs.append(total / r)
    return {"first": first_ranks, "ap": aps, "map_r": map_rs}


def test_hand_computed_example() -> None:
    # 2 queries, gallery of 4; relevance by key. Scores via one-hot-ish embeddings.
    gallery = torch.eye(4)
    queries = torch.tensor([[0.1, 0.9, 0.5, 0.0], [0.0, 0.0, 0.2, 0.8]])
    q_keys = torch.tensor([7, 3])
    g_keys = torch.tensor([7, 5, 7, 3])
    # query 0 scores: [0.1, 0.9, 0.5, 0.0]; relevant items 2 and 0 rank 2 and 3.
    #   first rank 2; AP = (1/2 + 2/3)/2 = 7/12
    # query 1 scores: [0, 0, 0.2, 0.8]; relevant item 3 ranks 1: AP = 1
    m = instance_metrics(queries, gallery, q_keys, g_keys, ks=(1, 2))
    assert m["R@1"] == pytest.approx(0.5)
    assert m["R@2"] == pytest.approx(1.0)
    assert m["MedR"] == pytest.approx(1.5)
    assert m["MeanR"] == pytest.approx(1.5)
    assert m["mAP"] == pytest.approx((7 / 12 + 1) / 2)
    assert m["queries"] == 2
    assert m["queries_skipped"] == 0


def test_ties_are_pessimistic() -> None:
    # every score equal: the single relevant item ranks last, not first
    queries = torch.ones(1, 2)
    gallery = torch.ones(5, 2)
    m = instance_metrics(queries, gallery, torch.tensor([1]), torch.tensor([0, 0, 1, 0, 0]))
    assert m["R@1"] == 0.0
    assert m["MedR"] == 5.0
    assert m["mAP"] == pytest.approx(1 / 5)


def test_queries_without_relevant_items_are_skipped_and_counted() -> None:
    g = torch.eye(3)
    m = instance_metrics(g, g, torch.tensor([0, 1, 9]), torch.tensor([0, 1, 2]))
    assert m["queries"] == 2
    assert m["queries_skipped"] == 1
    assert m["R@1"] == 1.0
    with pytest.raises(ValueError, match="no query has a relevant"):
        instance_metrics(g, g, torch.tensor([7, 8, 9]), torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_matches_naive_reference_with_ties_and_multiple_positives(chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(3)
    # quantised embeddings produce many exact ties
    queries = torch.randint(-2, 3, (23, 4), generator=gen).double()
    gallery = torch.randint(-2, 3, (31, 4), generator=gen).double()
    q_keys = torch.randint(0, 6, (23,), generator=gen)
    g_keys = torch.randint(0, 6, (31,), generator=gen)
    ranks = rank_queries(queries, gallery, q_keys, g_keys, chunk_size=chunk_size)
    ref = naive_metrics(queries @ gallery.T, q_keys.tolist(), g_keys.tolist())
    valid = ranks.num_relevant > 0
    assert ranks.first_rank[valid].tolist() == ref["first"]
    np.testing.assert_allclose(ranks.average_precision[valid].numpy(), ref["ap"], rtol=1e-12)
    np.testing.assert_allclose(ranks.map_at_r[valid].numpy(), ref["map_r"], rtol=1e-12)
    m = instance_metrics(queries, gallery, q_keys, g_keys, chunk_size=chunk_size)
    assert m["MedR"] == pytest.approx(statistics.median(ref["first"]))
    assert m["R@5"] == pytest.approx(np.mean([r <= 5 for r in ref["first"]]))


def test_category_metrics_hand_example() -> None:
    gallery = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 0.8]])
    g_labels = torch.tensor([0, 1, 1, 0])
    queries = torch.tensor([[1.0, 0.0]])
    # scores 1.0, 0.9, 0.0, 0.2 → ranked labels 0, 1, 0, 1; R = 2 relevant (label 0)
    # P@1 = 1; MAP@R = (1/2)(1/1 + 0) = 0.5 (the second relevant sits at rank 3 > R)
    m = category_metrics(queries, gallery, torch.tensor([0]), g_labels)
    assert m["P@1"] == 1.0
    assert m["MAP@R"] == pytest.approx(0.5)


def test_chance_recall_closed_form_and_monte_carlo() -> None:
    # one relevant among N: R@K = K/N
    keys = torch.arange(200)
    assert chance_recall(keys, keys, 10) == pytest.approx(10 / 200)
    assert chance_recall(keys, keys, 1) == pytest.approx(1 / 200)
    # two relevant among 4, K=1: 1/2; K=3: 1 - C(2,3)/C(4,3) = 1
    g = torch.tensor([0, 0, 1, 1])
    assert chance_recall(torch.tensor([0]), g, 1) == pytest.approx(0.5)
    assert chance_recall(torch.tensor([0]), g, 3) == pytest.approx(1.0)
    # Monte Carlo on a random configuration
    gen = torch.Generator().manual_seed(0)
    g_keys = torch.randint(0, 15, (60,), generator=gen)
    q_keys = torch.randint(0, 15, (20,), generator=gen)
    expected = chance_recall(q_keys, g_keys, 5)
    hits, trials = 0, 0
    rng = np.random.default_rng(0)
    for _ in range(2000):
        for qk in q_keys.tolist():
            if not (g_keys == qk).any():
                continue
            top = rng.permutation(60)[:5]
            hits += int((g_keys[top] == qk).any())
            trials += 1
    assert hits / trials == pytest.approx(expected, abs=0.01)


def test_nmi_against_sklearn_and_edge_cases() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    c = np.where(rng.random(300) < 0.6, y, rng.integers(0, 7, 300))
    assert normalized_mutual_information(y, c) == pytest.approx(
        metrics.normalized_mutual_info_score(y, c), rel=1e-10
    )
    assert normalized_mutual_information(y, y + 10) == pytest.approx(1.0)
    assert normalized_mutual_information(np.zeros(5), np.zeros(5)) == 1.0
    with pytest.raises(ValueError, match="same length"):
        normalized_mutual_information(y, c[:-1])


def test_kmeans_nmi_separated_clusters_score_high_random_low() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 16, generator=gen), dim=1)
    labels = torch.arange(4).repeat_interleave(25)
    tight = torch.nn.functional.normalize(
        centres[labels] + 0.05 * torch.randn(100, 16, generator=gen), dim=1
    )
    assert kmeans_nmi(tight, labels) > 0.95
    noise = torch.nn.functional.normalize(torch.randn(100, 16, generator=gen), dim=1)
    assert kmeans_nmi(noise, labels) < 0.3


def test_bad_inputs_raise_clear_errors() -> None:
    q = torch.randn(3, 4)
    g = torch.randn(5, 4)
    with pytest.raises(ValueError, match="NaN or inf"):
        instance_metrics(q, torch.full((5, 4), math.nan), torch.zeros(3), torch.zeros(5))
    with pytest.raises(ValueError, match="expected"):
        instance_metrics(q, torch.randn(5, 3), torch.zeros(3), torch.zeros(5))
    with pytest.raises(ValueError, match="one key"):
        instance_metrics(q, g, torch.zeros(2), torch.zeros(5))
    with pytest.raises(ValueError, match="empty"):
        instance_metrics(q, torch.zeros(0, 4), torch.zeros(3), torch.zeros(0))


def test_a_scorer_replaces_the_dot_product_everywhere() -> None:
    # Scoring by negative squared distance ranks like a naive loop over that score.
    from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings

    gen = torch.Generator().manual_seed(7)
    video = torch.randn(12, 5, generator=gen)
    music = torch.randn(12, 5, generator=gen)
    tracks = torch.arange(12) // 2
    labels = torch.arange(12) % 3

    def scorer(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return -(torch.cdist(q.double(), g.double()) ** 2)

    report = evaluate_embeddings(video, music, tracks, labels, with_nmi=False, scorer=scorer)
    # Naive R@1 (pessimistic ties cannot occur with continuous scores) and new-video share.
    hits, shares = 0, []
    for i in range(12):
        d = [float(((video[i] - music[j]) ** 2).sum()) for j in range(12)]
        best = min(range(12), key=lambda j: d[j])
        hits += int(tracks[best] == tracks[i])
        others = sorted((j for j in range(12) if tracks[j] != tracks[i]), key=lambda j: d[j])[:10]
        shares.append(sum(int(labels[j] == labels[i]) for j in others) / 10)
    assert report["video_to_music"]["R@1"] == pytest.approx(hits / 12)
    assert report["category"]["new_video_top10"] == pytest.approx(sum(shares) / 12)
    plain = evaluate_embeddings(video, music, tracks, labels, with_nmi=False)
    assert plain["video_to_music"]["mAP"] != report["video_to_music"]["mAP"]
