""" "Music for a new video": the top-10 same-mood share with the video's own track left
out of the gallery, against a naive loop, plus its place in the evaluation report."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from crossmodal.evaluation import new_video_mood_share
from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings, format_report


def _naive(video, music, tracks, labels, k):
    shares = []
    for i in range(len(video)):
        scored = [
            (float(video[i] @ music[j]), j) for j in range(len(music)) if tracks[j] != tracks[i]
        ]
        scored.sort(key=lambda t: -t[0])
        top = [j for _, j in scored[:k]]
        shares.append(sum(int(labels[j] == labels[i]) for j in top) / len(top))
    return sum(shares) / len(shares)


@pytest.mark.parametrize("chunk", [3, 256])
def test_equals_a_naive_loop_with_shared_tracks_and_small_galleries(chunk: int) -> None:
    gen = torch.Generator().manual_seed(0)
    video = F.normalize(torch.randn(30, 8, generator=gen), dim=1)
    music = F.normalize(torch.randn(30, 8, generator=gen), dim=1)
    tracks = torch.arange(30) // 2  # two clips per track: both are left out
    labels = torch.randint(0, 4, (30,), generator=gen)
    for k in (1, 10):
        got = new_video_mood_share(video, music, tracks, labels, k, chunk_size=chunk)
        assert got == pytest.approx(_naive(video, music, tracks, labels, k), abs=1e-12)
    # Fewer other tracks than k: only the real ones count.
    small = new_video_mood_share(video[:4], music[:4], tracks[:4], labels[:4], 10)
    assert small == pytest.approx(_naive(video[:4], music[:4], tracks[:4], labels[:4], 10))


def test_a_mood_clustered_space_scores_one_and_the_report_prints_it() -> None:
    labels = torch.arange(24) % 3
    centres = torch.eye(8)[:3]
    gen = torch.Generator().manual_seed(1)
    video = F.normalize(centres[labels] + 0.05 * torch.randn(24, 8, generator=gen), dim=1)
    music = F.normalize(centres[labels] + 0.05 * torch.randn(24, 8, generator=gen), dim=1)
    tracks = torch.arange(24)
    assert new_video_mood_share(video, music, tracks, labels, 5) == 1.0
    report = evaluate_embeddings(video, music, tracks, labels)
    assert report["category"]["new_video_top10"] == pytest.approx(7 / 10)  # 7 others per mood
    assert "new video (own track left out): top-10 same mood 0.700" in format_report(report)
