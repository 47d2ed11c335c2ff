"""Both retrieval directions from embeddings: a hand-computed asymmetric example, and
every metric against naive loops on random data with shared tracks and ties."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings, format_report


def test_hand_computed_directions_differ() -> None:
    # Two identical videos, two different pieces of music: video 1's music is beaten by
    # video 0's; from the music side every score is a tie, counted pessimistically.
    video = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    music = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    report = evaluate_embeddings(video, music, torch.tensor([0, 1]))
    assert report["video_to_music"] == {
        "R@1": 0.5,
        "R@5": 1.0,
        "R@10": 1.0,
        "MedR": 1.5,
        "MeanR": 1.5,
        "mAP": 0.75,
    }
    assert report["music_to_video"] == {
        "R@1": 0.0,
        "R@5": 1.0,
        "R@10": 1.0,
        "MedR": 2.0,
        "MeanR": 2.0,
        "mAP": 0.5,
    }
    assert report["gallery_size"] == 2
    assert report["chance"] == {"R@1": 0.5, "R@10": 1.0}
    assert "category" not in report


def naive_direction(queries, gallery, keys) -> dict[str, float]:
    """R@K, MedR, MeanR, mAP by loops: a non-relevant item tied with a relevant one
    ranks before it."""
    firsts, aps = [], []
    for i in range(len(queries)):
        scores = [float(queries[i] @ gallery[j]) for j in range(len(gallery))]
        relevant = [j for j in range(len(gallery)) if keys[j] == keys[i]]
        ranks = []
        for j in relevant:
            better_rel = sum(1 for r in relevant if r != j and scores[r] > scores[j])
            ties_rel = sum(1 for r in relevant if r < j and scores[r] == scores[j])
            nonrel = sum(
                1 for n in range(len(gallery)) if n not in relevant and scores[n] >= scores[j]
            )
            ranks.append(1 + better_rel + ties_rel + nonrel)
        ranks.sort()
        firsts.append(ranks[0])
        aps.append(sum((k + 1) / r for k, r in enumerate(ranks)) / len(ranks))
    return {
        "R@1": sum(f <= 1 for f in firsts) / len(firsts),
        "R@5": sum(f <= 5 for f in firsts) / len(firsts),
        "R@10": sum(f <= 10 for f in firsts) / len(firsts),
        "MedR": statistics.median(firsts),
        "MeanR": sum(firsts) / len(firsts),
        "mAP": sum(aps) / len(aps),
    }


def naive_category(queries, gallery, labels) -> dict[str, float]:
    p1, map_r = [], []
    for i in range(len(queries)):
        scores = [float(queries[i] @ gallery[j]) for j in range(len(gallery))]
        # pessimistic order: by score, non-relevant first among ties
        order = sorted(range(len(gallery)), key=lambda j: (-scores[j], labels[j] == labels[i], j))
        rel = [labels[j] == labels[i] for j in order]
        big_r = sum(rel)
        p1.append(float(rel[0]))
        hits, total = 0, 0.0
        for k in range(big_r):
            if rel[k]:
                hits += 1
                total += hits / (k + 1)
        map_r.append(total / big_r)
    return {"P@1": sum(p1) / len(p1), "MAP@R": sum(map_r) / len(map_r)}


@pytest.mark.parametrize("chunk_size", [1, 7, 256])
def test_every_metric_equals_naive_loops(chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(4)
    n = 30
    tracks = torch.arange(n) // 2  # two clips per track
    labels = torch.arange(n) % 3
    # rounded coordinates make exact ties between scores
    video = (torch.randn(n, 3, generator=gen) * 2).round() / 2
    music = (torch.randn(n, 3, generator=gen) * 2).round() / 2
    report = evaluate_embeddings(video, music, tracks, labels, chunk_size=chunk_size)
    for name, queries, gallery in (
        ("video_to_music", video, music),
        ("music_to_video", music, video),
    ):
        expected = naive_direction(queries.double(), gallery.double(), tracks.tolist())
        assert report[name] == pytest.approx(expected)
        category = naive_category(queries.double(), gallery.double(), labels.tolist())
        assert report["category"][name] == pytest.approx(category)
    # chance R@1 with m = 2 relevant among N = 30: 1 - C(28, 1)/C(30, 1)
    assert report["chance"]["R@1"] == pytest.approx(2 / 30, abs=1e-6)
    assert report["chance"]["R@10"] == pytest.approx(
        1 - math.comb(28, 10) / math.comb(30, 10), abs=1e-6
    )
    assert report["category"]["chance_P@1"] == pytest.approx(10 / 30, abs=1e-6)
    assert 0.0 <= report["category"]["NMI"] <= 1.0


def test_unlabelled_clips_are_left_out_of_category_metrics() -> None:
    video = torch.eye(4)
    music = torch.eye(4)
    labels = torch.tensor([0, 1, -1, 1])
    report = evaluate_embeddings(video, music, torch.arange(4), labels, with_nmi=False)
    # among the 3 labelled clips each query's best music is itself: P@1 = 1
    assert report["category"]["video_to_music"]["P@1"] == 1.0
    assert "NMI" not in report["category"]
    # one label only: no category section
    one = evaluate_embeddings(video, music, torch.arange(4), torch.tensor([0, 0, -1, -1]))
    assert "category" not in one


def test_format_report_shows_every_number() -> None:
    video = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    music = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = format_report(evaluate_embeddings(video, music, torch.tensor([0, 1])))
    lines = text.splitlines()
    assert lines[0] == "gallery: 2 clips   chance R@1 0.500   chance R@10 1.000"
    assert lines[2].split() == ["video_to_music", "0.500", "1.000", "1.000", "1.5", "1.5", "0.750"]
    assert lines[3].split() == ["music_to_video", "0.000", "1.000", "1.000", "2.0", "2.0", "0.500"]


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="embeddings differ"):
        evaluate_embeddings(torch.zeros(3, 2), torch.zeros(2, 2), torch.arange(3))
