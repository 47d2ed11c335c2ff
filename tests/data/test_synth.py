from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossmodal.data import (
    AudioSpec,
    VideoSpec,
    decode_segment,
    load_audio,
    probe,
    read_manifest,
)
from crossmodal.data.synth import (
    MOODS,
    SynthConfig,
    clip_rng,
    coupling_check,
    generate_corpus,
    parse_split,
    rank_metrics,
    render_clip,
    render_music,
    sample_score,
    split_counts,
)
from crossmodal.data.synth.music import midi_to_hz
from crossmodal.data.synth.score import MAJOR, MINOR
from crossmodal.errors import CrossmodalError

SMALL = SynthConfig(clips=6, seed=11, duration=2.0, size=48, split=(0.5, 0.0, 0.5))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return generate_corpus(out, SMALL, progress=False)


def test_corpus_files_and_manifest(corpus: Path) -> None:
    records = read_manifest(corpus)
    assert [r.id for r in records] == [f"clip_{i:06d}" for i in range(6)]
    assert sorted(r.split for r in records) == ["test"] * 3 + ["train"] * 3
    assert {r.label for r in records} <= {m.name for m in MOODS}
    for record in records:
        assert record.audio is None  # each video carries its own music
        assert record.track_id == record.id
        assert (record.start, record.end) == (0.0, 2.0)
        info = probe(record.video)
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert (info.width, info.height, info.fps, info.frame_count) == (48, 48, 12.0, 24)
        assert (info.sample_rate, info.channels) == (16000, 1)
        assert record.extra["synth"]["bpm"] > 0
        # The variants are off: nothing about them in a default clip's record.
        assert not {"timbres", "timbre", "clutter", "shake"} & record.extra["synth"].keys()
    config = json.loads((corpus.parent / "synth.json").read_text())["config"]
    assert (config["timbres"], config["clutter"], config["shake"]) == ("default", 0.0, 0.0)


def test_same_seed_same_media_different_seed_different_media(corpus: Path, tmp_path: Path) -> None:
    again = generate_corpus(tmp_path / "again", SMALL, progress=False)
    other = generate_corpus(
        tmp_path / "other", SynthConfig(**{**SMALL.__dict__, "seed": 12}), progress=False
    )
    spec = VideoSpec(height=48, width=48)
    for first, second, third in zip(
        read_manifest(corpus), read_manifest(again), read_manifest(other), strict=True
    ):
        frames_a, _ = decode_segment(first.video, spec, 0.0, None)
        frames_b, _ = decode_segment(second.video, spec, 0.0, None)
        np.testing.assert_array_equal(frames_a, frames_b)
        np.testing.assert_array_equal(
            load_audio(first.video, 16000)[0], load_audio(second.video, 16000)[0]
        )
        assert not np.array_equal(frames_a, decode_segment(third.video, spec, 0.0, None)[0])
    with pytest.raises(CrossmodalError, match="--overwrite"):
        generate_corpus(tmp_path / "again", SMALL, progress=False)


@pytest.mark.slow
def test_worker_count_does_not_change_the_corpus(corpus: Path, tmp_path: Path) -> None:
    parallel = generate_corpus(tmp_path / "parallel", SMALL, workers=2, progress=False)
    for a, b in zip(read_manifest(corpus), read_manifest(parallel), strict=True):
        assert a.video.read_bytes() == b.video.read_bytes()
        assert a.label == b.label
        assert a.split == b.split


def test_splits_from_fractions_or_counts() -> None:
    assert split_counts(10, (0.7, 0.1, 0.2)) == (7, 1, 2)
    assert split_counts(1400, (1000, 200, 200)) == (1000, 200, 200)
    assert split_counts(7, (0.5, 0.5)) == (4, 3)
    assert parse_split("1000,200,200") == (1000.0, 200.0, 200.0)
    with pytest.raises(CrossmodalError, match="fractions summing to 1 or counts"):
        split_counts(10, (5, 3, 1))
    with pytest.raises(CrossmodalError, match="numbers separated by commas"):
        parse_split("0.7;0.3")
    with pytest.raises(CrossmodalError, match="even"):
        SynthConfig(size=33)


def test_moods_are_balanced_and_overlap() -> None:
    from crossmodal.data.synth.corpus import mood_of

    counts = np.bincount([mood_of(3, i, 60) for i in range(60)], minlength=len(MOODS))
    assert counts.tolist() == [10] * len(MOODS)
    # Each mood's tempo range overlaps another's: tempo alone cannot name the mood.
    for mood in MOODS:
        others = [m for m in MOODS if m is not mood]
        assert any(o.tempo[0] < mood.tempo[1] and mood.tempo[0] < o.tempo[1] for o in others)


def test_scores_are_consistent() -> None:
    for i in range(60):
        mood = MOODS[i % len(MOODS)]
        score = sample_score(mood, clip_rng(5, i), 4.0)
        assert mood.tempo[0] <= score.bpm <= mood.tempo[1]
        np.testing.assert_allclose(np.diff(score.beat_times), score.beat_period)
        assert np.all((score.note_onsets >= 0) & (score.note_onsets < 4.0))
        assert np.all(np.diff(score.note_onsets) > 0)
        assert len(score.note_onsets) >= 3
        for start, end in score.breaks:
            assert not np.any((score.note_onsets >= start) & (score.note_onsets < end))
            assert end - start <= 0.9 + 1e-9
        # Every accent is on a beat and sounds a full-velocity note.
        assert np.all(np.isin(np.round(score.accent_times, 6), np.round(score.beat_times, 6)))
        on_accent = np.isin(np.round(score.note_onsets, 6), np.round(score.accent_times, 6))
        assert on_accent.sum() == len(score.accent_times)
        assert np.all(score.note_velocities[on_accent] == 1.0)
        scale = np.array(MAJOR if score.major else MINOR)
        assert np.all(np.isin((score.note_pitches - score.root) % 12, scale))


def test_music_is_silent_in_breaks_and_sounds_the_notes() -> None:
    rng = clip_rng(1, 0)
    score = next(
        s for k in range(50) if len((s := sample_score(MOODS[0], clip_rng(1, k), 4.0)).breaks)
    )
    wave = render_music(score, 16000, rng)
    assert wave.shape == (64000,)
    assert np.abs(wave).max() <= 1.0
    start, end = score.breaks[0]
    inside = wave[int((start + 0.03) * 16000) : int((end - 0.02) * 16000)]
    loud = [
        np.sqrt(np.mean(wave[int(t * 16000) : int(t * 16000) + 800] ** 2))
        for t in score.note_onsets
    ]
    assert np.sqrt(np.mean(inside**2)) < 0.1 * np.median(loud)  # only the faint noise floor
    # The first note's fundamental is the loudest line of its spectrum around the pitch.
    onset, length, pitch = score.note_onsets[0], score.note_lengths[0], score.note_pitches[0]
    segment = wave[int(onset * 16000) : int((onset + length) * 16000)]
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    freqs = np.fft.rfftfreq(len(segment), 1 / 16000)
    f0 = float(midi_to_hz(pitch))
    band = (freqs > f0 * 0.8) & (freqs < f0 * 1.25)
    assert abs(freqs[band][spectrum[band].argmax()] - f0) < 0.03 * f0 + 8


def test_video_shows_breaks_and_accents() -> None:
    config = SynthConfig(clips=1, duration=4.0, size=48)
    hidden = flashes = 0
    for i in range(30):
        frames, _, score = render_clip(config, i, i % len(MOODS))
        brightness = frames.reshape(len(frames), -1).mean(axis=1)
        times = np.arange(len(frames)) / config.fps
        for start, end in score.breaks:
            inside = (times >= start + 0.1) & (times < end)
            before = (times >= start - 0.5) & (times < start - 0.1)
            if inside.any() and before.any():
                hidden += brightness[inside].mean() < brightness[before].mean()
        for accent in score.accent_times:
            f = int(np.ceil(accent * config.fps - 1e-9))
            if 2 <= f < len(frames):
                flashes += brightness[f] > brightness[f - 2]
    assert hidden >= 20
    assert flashes >= 30


@pytest.mark.slow
def test_coupling_is_far_above_chance_and_no_scalar_gives_it_away(tmp_path: Path) -> None:
    manifest = generate_corpus(
        tmp_path / "c",
        SynthConfig(clips=24, seed=2, size=64, split=(0.0, 0.0, 1.0)),
        progress=False,
    )
    records = read_manifest(manifest)
    result = coupling_check(records)
    chance = result.chance()
    for metrics in (result.video_to_music, result.music_to_video):
        assert metrics["R@1"] >= 8 * chance["R@1"]  # chance: 1/24
        assert metrics["MedR"] <= 3
    # Whole-clip scalars (mean brightness vs loudness) do not pair clips: near chance.
    brightness, loudness = [], []
    for record in records:
        frames, _ = decode_segment(record.video, VideoSpec(height=32, width=32), 0.0, None)
        wave, _ = load_audio(record.video, AudioSpec().sample_rate)
        brightness.append(frames.mean())
        loudness.append(np.sqrt(np.mean(wave**2)))
    b, a = np.array(brightness), np.array(loudness)
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    scalar = rank_metrics(-np.abs(z(b)[:, None] - z(a)[None, :]))
    assert scalar["R@1"] <= 3 / 24  # chance 1/24
    assert scalar["MedR"] >= 8  # chance 12.5


def test_rank_metrics_against_a_loop() -> None:
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(30, 30)) + 2 * np.eye(30) * rng.random(30)
    sim[3, 7] = sim[3, 3]  # a tie counts against the right item (pessimistic rule)
    sim[5] = 0.0  # a constant row earns the worst rank
    ranks = []
    for i in range(30):
        # the right item goes after every other item with the same score
        order = sorted(range(30), key=lambda j: (-sim[i, j], j == i))
        ranks.append(order.index(i) + 1)
    ranks = np.array(ranks)
    assert ranks[5] == 30
    metrics = rank_metrics(sim)
    assert metrics["R@1"] == pytest.approx(np.mean(ranks == 1))
    assert metrics["R@10"] == pytest.approx(np.mean(ranks <= 10))
    assert metrics["MedR"] == pytest.approx(np.median(ranks))
