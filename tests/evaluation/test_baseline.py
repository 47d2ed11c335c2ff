"""The non-learned sync baseline: envelopes against closed forms, the lagged correlation
against a naive loop, the report against the embedding evaluation, and real media files
whose music onsets and frame motion coincide (or not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crossmodal.data.manifest import ClipRecord
from crossmodal.data.writer import write_media
from crossmodal.evaluation.baseline import (
    behind_baseline,
    motion_envelope,
    onset_envelope,
    scores_report,
    sync_baseline,
    sync_scores,
)
from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings

RATE, SR, FPS, SECONDS, SIZE = 20.0, 16000, 12.0, 4.0, 32


def clicks(times: list[float], seconds: float = SECONDS) -> np.ndarray:
    """Silence with a 30 ms decaying 1 kHz burst at each time."""
    wave = np.zeros(int(seconds * SR), dtype=np.float32)
    burst = np.sin(2 * np.pi * 1000 * np.arange(480) / SR) * np.exp(-np.arange(480) / 120)
    for t in times:
        start = int(t * SR)
        wave[start : start + 480] += 0.8 * burst[: len(wave) - start]
    return wave


def flashes(times: list[float], seconds: float = SECONDS) -> np.ndarray:
    """Grey frames that turn white for one frame at each time (motion at its edges)."""
    frames = np.full((int(seconds * FPS), SIZE, SIZE, 3), 40, dtype=np.uint8)
    for t in times:
        frames[round(t * FPS)] = 230
    return frames


def test_onset_envelope_peaks_at_the_click() -> None:
    envelope = onset_envelope(clicks([1.025, 2.525]), SR, int(SECONDS * RATE), RATE)
    assert len(envelope) == 80
    top = set(np.argsort(envelope)[-2:].tolist())
    assert top == {20, 50}  # mid-bin times of 1/20 s bins: 1.025 s → 20, 2.525 s → 50


def test_motion_envelope_is_the_frame_difference_at_its_time() -> None:
    frames = np.zeros((5, 2, 2, 3), dtype=np.uint8)
    frames[3] = 255  # a change between frames 2→3 and 3→4
    times = np.arange(5) / 2.0  # 2 fps
    envelope = motion_envelope(frames, times, n_bins=5, rate=2.0)
    # differences [0, 0, 255, 255] at times [0.5, 1, 1.5, 2]; grid at (k + 0.5) / 2
    expected = np.interp((np.arange(5) + 0.5) / 2.0, times[1:], [0.0, 0.0, 255.0, 255.0])
    np.testing.assert_allclose(envelope, expected)


def test_sync_scores_equal_a_naive_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    video, music = torch.rand(5, 30, generator=gen), torch.rand(4, 30, generator=gen)
    got = sync_scores(video, music, max_lag_bins=3)

    def z(x: list[float]) -> list[float]:
        mean = sum(x) / len(x)
        std = (sum((v - mean) ** 2 for v in x) / (len(x) - 1)) ** 0.5
        return [(v - mean) / std for v in x]

    for i in range(5):
        for j in range(4):
            zv, zm = z(video[i].double().tolist()), z(music[j].double().tolist())
            best = max(
                sum(zv[t] * zm[t + lag] for t in range(30) if 0 <= t + lag < 30) / 30
                for lag in range(-3, 4)
            )
            assert got[i, j].item() == pytest.approx(best, abs=1e-12)


def test_scores_report_equals_the_embedding_evaluation_on_dot_products() -> None:
    gen = torch.Generator().manual_seed(1)
    video = torch.nn.functional.normalize(torch.randn(12, 8, generator=gen), dim=1)
    music = torch.nn.functional.normalize(video + 0.8 * torch.randn(12, 8, generator=gen), dim=1)
    tracks = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    expected = evaluate_embeddings(video, music, tracks)
    got = scores_report(video.double() @ music.double().T, tracks)
    for direction in ("video_to_music", "music_to_video"):
        for key, value in expected[direction].items():
            assert got[direction][key] == pytest.approx(value), (direction, key)
    assert got["chance"] == expected["chance"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[ClipRecord]:
    """Five clips, each with its own random event times: flashes in the picture and
    clicks in the soundtrack at the same times."""
    folder = tmp_path_factory.mktemp("sync")
    rng = np.random.default_rng(0)
    records = []
    for k in range(5):
        times = sorted(rng.uniform(0.3, SECONDS - 0.3, size=6).round(3).tolist())
        path = write_media(
            folder / f"clip{k}.mp4", flashes(times), fps=FPS, audio=clicks(times), sample_rate=SR
        )
        records.append(ClipRecord(id=f"clip{k}", video=path, start=0.0, end=SECONDS))
    return records


def test_the_baseline_ranks_each_synchronised_pair_first(clips: list[ClipRecord]) -> None:
    report = sync_baseline(clips)
    for direction in ("video_to_music", "music_to_video"):
        assert report[direction]["R@1"] == 1.0, report
    assert report["gallery_size"] == 5


def test_music_moved_off_the_motion_no_longer_matches(
    clips: list[ClipRecord], tmp_path: Path
) -> None:
    # The picture of clip 0 with its own clicks 0.6 s late (beyond the ±0.2 s lag
    # tolerance) competes with the in-sync clips: it is not its own best match.
    times = [0.5, 1.1, 1.9, 2.4, 3.0]
    late = write_media(
        tmp_path / "late.mp4",
        flashes(times),
        fps=FPS,
        audio=clicks([t + 0.6 for t in times]),
        sample_rate=SR,
    )
    synced = write_media(
        tmp_path / "synced.mp4", flashes(times), fps=FPS, audio=clicks(times), sample_rate=SR
    )
    records = [
        *clips,
        ClipRecord(id="late", video=late, start=0.0, end=SECONDS),
        ClipRecord(id="synced", video=synced, start=0.0, end=SECONDS, track_id="synced_track"),
    ]
    report = sync_baseline(records)
    # every in-sync clip still finds its pair first; the late one does not
    assert report["video_to_music"]["R@1"] == pytest.approx(6 / 7)


def test_behind_baseline_lists_what_the_model_does_not_beat() -> None:
    def report(r1: float, r10: float, ap: float) -> dict:
        row = {"R@1": r1, "R@10": r10, "mAP": ap}
        return {"video_to_music": row, "music_to_video": dict(row)}

    assert behind_baseline(report(0.9, 1.0, 0.9), report(0.5, 1.0, 0.6)) == []
    # a tie on R@10 alone is no defeat; a worse R@1 or a mAP not above the baseline's is
    assert behind_baseline(report(0.6, 0.9, 0.74), report(0.4, 0.9, 0.55)) == []
    assert behind_baseline(report(0.5, 0.9, 0.7), report(0.6, 0.8, 0.7)) == [
        "v→m mAP 0.700 ≤ 0.700",
        "v→m R@1 0.500 < 0.600",
        "m→v mAP 0.700 ≤ 0.700",
        "m→v R@1 0.500 < 0.600",
    ]
    slow = report(0.6, 0.9, 0.8)
    slow["music_to_video"] = {"R@1": 0.6, "R@10": 0.8, "mAP": 0.8}
    assert behind_baseline(slow, report(0.5, 0.85, 0.7)) == ["m→v R@10 0.800 < 0.850"]
