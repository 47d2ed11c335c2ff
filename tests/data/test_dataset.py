from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

import crossmodal.data.dataset as dataset_module
from crossmodal.data import (
    AudioSpec,
    ClipAugment,
    FeatureCache,
    MediaError,
    PairedClipDataset,
    SpecAugment,
    TooShortError,
    VideoSpec,
    make_loader,
)

FPS = 12
VIDEO = VideoSpec(num_frames=4, height=32, width=32)
WAVE = AudioSpec(sample_rate=8000, seconds=2.0, representation="waveform")
MEL = AudioSpec(sample_rate=8000, seconds=2.0, n_mels=24, n_fft=256, hop_length=80)


def _manifest(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def aligned(tmp_path: Path, make_video, make_audio) -> Path:
    """Clips whose video frame f shows level(f) and whose music is a ramp, sample value
    = time / 10: any window tells where it starts in both modalities."""
    rate = WAVE.sample_rate
    ramp = (np.arange(6 * rate) / rate / 10).astype(np.float32)
    music = make_audio("ramp.wav", ramp, rate, subtype="FLOAT")
    lines = []
    for i, label in enumerate(["calm", "tense", "calm"]):
        make_video(f"v{i}.mp4", frames=6 * FPS, fps=FPS, audio=None)
        lines.append(
            {
                "id": f"c{i}",
                "video": f"v{i}.mp4",
                "audio": music.name,
                "label": label,
                "track_id": "shared" if i < 2 else "solo",
                "split": "train",
                "start": 0.5,
                "end": 5.5,
            }
        )
    return _manifest(tmp_path / "manifest.jsonl", lines)


def _check_alignment(item: dict, helpers, rate: int) -> None:
    start = item["start"]
    assert 0.5 <= start <= 3.5 + 1e-9
    frames = item["video"].permute(1, 2, 3, 0).numpy()  # (T, H, W, 3) normalised
    levels = (frames * np.array(VIDEO.std) + np.array(VIDEO.mean)) * 255
    index = helpers.decoded_index(levels)
    times = start + (np.arange(VIDEO.num_frames) + 0.5) * WAVE.seconds / VIDEO.num_frames
    np.testing.assert_array_equal(index, np.floor(times * FPS + 1e-6).astype(int))
    audio = item["audio"].numpy()
    np.testing.assert_allclose(audio[0], round(start * rate) / rate / 10, atol=1e-6)
    np.testing.assert_allclose(np.diff(audio), 1 / rate / 10, atol=1e-6)


def test_train_windows_are_random_and_aligned(aligned: Path, helpers) -> None:
    ds = PairedClipDataset(aligned, VIDEO, WAVE, train=True)
    torch.manual_seed(0)
    starts = []
    for i in range(12):
        item = ds[i % len(ds)]
        _check_alignment(item, helpers, WAVE.sample_rate)
        starts.append(item["start"])
    assert len(set(np.round(starts, 6))) == 12


def test_items_vocabularies_and_collate(aligned: Path) -> None:
    ds = PairedClipDataset(aligned, VIDEO, MEL, split="train")
    assert len(ds) == 3
    assert ds.labels == ["calm", "tense"]
    assert ds.track_ids == ["shared", "solo"]
    np.testing.assert_array_equal(ds.track_indices, [0, 0, 1])
    np.testing.assert_array_equal(ds.label_indices, [0, 1, 0])
    batch = default_collate([ds[i] for i in range(3)])
    assert batch["video"].shape == (3, 3, VIDEO.num_frames, 32, 32)
    assert batch["video"].dtype == torch.float32
    assert batch["audio"].shape == (3, MEL.n_mels, MEL.num_mel_frames)
    assert batch["track"].tolist() == [0, 0, 1]
    assert batch["label"].tolist() == [0, 1, 0]
    assert batch["id"] == ["c0", "c1", "c2"]
    assert batch["start"].tolist() == [2.0, 2.0, 2.0]  # centre of [0.5, 5.5]


def test_vocabulary_needs_no_decoding(aligned: Path, monkeypatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded media")

    monkeypatch.setattr(dataset_module, "VideoFile", refuse)
    monkeypatch.setattr(dataset_module, "load_audio", refuse)
    ds = PairedClipDataset(aligned, VIDEO, WAVE, eval_windows=3)
    assert len(ds) == 9
    assert [ds.track_index(i) for i in range(9)] == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert [ds.label_index(i) for i in range(0, 9, 3)] == [0, 1, 0]
    assert ds.record(4).id == "c1"
    with pytest.raises(IndexError):
        ds.track_index(9)


def test_eval_windows(aligned: Path, helpers) -> None:
    start = PairedClipDataset(aligned, VIDEO, WAVE, eval_windows="start")
    assert start[0]["start"] == 0.5
    segments = PairedClipDataset(aligned, VIDEO, WAVE, eval_windows=3)
    assert [segments[i]["start"] for i in range(3)] == [0.5, 2.0, 3.5]
    for i in range(3):
        _check_alignment(segments[i], helpers, WAVE.sample_rate)


def test_jitter_shifts_music_inside_the_clip(aligned: Path) -> None:
    ds = PairedClipDataset(aligned, VIDEO, WAVE, train=True, jitter=0.25)
    torch.manual_seed(3)
    shifts = []
    for _ in range(40):
        video_start, music_start = ds.window_starts(0)
        assert 0.5 <= music_start <= 3.5
        shifts.append(music_start - video_start)
    assert max(np.abs(shifts)) <= 0.25 + 1e-9
    assert np.std(shifts) > 0.05


def test_spec_augment_only_when_training(aligned: Path) -> None:
    aug = SpecAugment(freq_masks=2, freq_width=6, time_masks=2, time_width=20)
    plain = PairedClipDataset(aligned, VIDEO, MEL, eval_windows="start")[0]["audio"]
    evaluated = PairedClipDataset(aligned, VIDEO, MEL, eval_windows="start", spec_augment=aug)[0]
    assert torch.equal(evaluated["audio"], plain)
    train = PairedClipDataset(aligned, VIDEO, MEL, train=True, spec_augment=aug)
    torch.manual_seed(0)
    item = train[0]
    mean = item["audio"].mean()
    masked_rows = (item["audio"] == item["audio"][:, :1]).all(dim=1)
    assert masked_rows.any() or (item["audio"] == item["audio"][:1]).all(dim=0).any()
    assert torch.isfinite(mean)


def test_clip_augment_only_when_training_and_seeded(aligned: Path) -> None:
    colour = ClipAugment(colour=0.5)
    plain = PairedClipDataset(aligned, VIDEO, MEL, eval_windows="start")[0]
    evaluated = PairedClipDataset(aligned, VIDEO, MEL, eval_windows="start", augment=colour)[0]
    assert torch.equal(evaluated["video"], plain["video"])
    assert torch.equal(evaluated["audio"], plain["audio"])

    def item(augment: ClipAugment | None, seed: int) -> dict:
        torch.manual_seed(seed)
        return PairedClipDataset(aligned, VIDEO, MEL, train=True, augment=augment)[0]

    bare, coloured, again = item(None, 3), item(colour, 3), item(colour, 3)
    # The window is drawn before the augmentation: the same seed, the same window.
    assert coloured["start"] == bare["start"]
    assert torch.equal(coloured["audio"], bare["audio"])  # a frame transform only
    assert not torch.equal(coloured["video"], bare["video"])
    assert torch.equal(coloured["video"], again["video"])
    louder = item(ClipAugment(gain_db=6.0), 3)
    assert torch.equal(louder["video"], bare["video"])
    shift = louder["audio"] - bare["audio"]
    torch.testing.assert_close(shift, shift.flatten()[0].expand_as(shift))


def test_clip_augment_reaches_a_waveform_music_input(aligned: Path) -> None:
    # A music encoder that takes waveforms gets the music transforms on the waveform:
    # a gain is one factor on every sample; evaluation windows are left alone.
    def item(augment: ClipAugment | None, seed: int) -> dict:
        torch.manual_seed(seed)
        return PairedClipDataset(aligned, VIDEO, WAVE, train=True, augment=augment)[0]

    bare, louder = item(None, 3), item(ClipAugment(gain_db=6.0), 3)
    assert louder["start"] == bare["start"]
    assert louder["audio"].shape == bare["audio"].shape == (WAVE.num_samples,)
    factor = float((louder["audio"] @ bare["audio"]) / (bare["audio"] @ bare["audio"]))
    assert 1e-3 < abs(20 * np.log10(factor)) <= 6.0
    torch.testing.assert_close(louder["audio"], bare["audio"] * factor)
    evaluated = PairedClipDataset(
        aligned, VIDEO, WAVE, eval_windows="start", augment=ClipAugment(gain_db=6.0)
    )[0]
    plain = PairedClipDataset(aligned, VIDEO, WAVE, eval_windows="start")[0]
    assert torch.equal(evaluated["audio"], plain["audio"])


@pytest.fixture
def decode_counter(monkeypatch) -> dict[str, int]:
    """Counts every decode the dataset starts (video files opened, segments, music)."""
    counts = {"video": 0, "segment": 0, "music": 0}
    real_video, real_segment, real_audio = (
        dataset_module.VideoFile,
        dataset_module.decode_segment,
        dataset_module.load_audio,
    )

    def counting(name: str, real):
        def wrapper(*args: object, **kwargs: object):
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(dataset_module, "VideoFile", counting("video", real_video))
    monkeypatch.setattr(dataset_module, "decode_segment", counting("segment", real_segment))
    monkeypatch.setattr(dataset_module, "load_audio", counting("music", real_audio))
    return counts


def test_cached_fixed_windows_match_and_decode_once(
    aligned: Path, tmp_path: Path, decode_counter
) -> None:
    direct = PairedClipDataset(aligned, VIDEO, MEL, eval_windows=2)
    cached = PairedClipDataset(aligned, VIDEO, MEL, eval_windows=2, cache=tmp_path / "cache")
    references = [direct[i] for i in range(len(direct))]
    decode_counter.update(video=0, segment=0, music=0)
    for i, reference in enumerate(references):
        item = cached[i]
        torch.testing.assert_close(item["video"], reference["video"], rtol=0, atol=0)
        torch.testing.assert_close(item["audio"], reference["audio"], rtol=0, atol=0)
    assert decode_counter == {"video": 6, "segment": 0, "music": 6}  # 3 clips × 2 windows
    decode_counter.update(video=0, segment=0, music=0)
    again = PairedClipDataset(
        aligned, VIDEO, MEL, eval_windows=2, cache=FeatureCache(tmp_path / "cache")
    )
    for i in range(len(again)):
        torch.testing.assert_close(again[i]["audio"], references[i]["audio"], rtol=0, atol=0)
    assert decode_counter == {"video": 0, "segment": 0, "music": 0}


def test_cached_random_windows_match_and_later_epochs_decode_nothing(
    aligned: Path, tmp_path: Path, decode_counter
) -> None:
    direct = PairedClipDataset(aligned, VIDEO, MEL, train=True)
    cached = PairedClipDataset(aligned, VIDEO, MEL, train=True, cache=tmp_path / "cache")
    torch.manual_seed(5)
    references = [direct[i] for i in range(3)]
    decode_counter.update(video=0, segment=0, music=0)
    torch.manual_seed(5)
    for i, reference in enumerate(references):
        item = cached[i]
        assert item["start"] == reference["start"]
        torch.testing.assert_close(item["video"], reference["video"], rtol=0, atol=0)
        # Same samples (the music is a wav read in a range either way); log-mels agree to
        # float rounding.
        torch.testing.assert_close(item["audio"], reference["audio"], rtol=0, atol=1e-4)
    # One video segment per clip; the three clips share one music file and span: one entry.
    assert decode_counter == {"video": 0, "segment": 3, "music": 1}
    decode_counter.update(video=0, segment=0, music=0)
    for _ in range(2):
        for i in range(len(cached)):
            cached[i]
    assert decode_counter == {"video": 0, "segment": 0, "music": 0}


def test_skip_substitutes_a_clip_of_the_same_track(aligned: Path, caplog) -> None:
    (aligned.parent / "v0.mp4").write_text("overwritten by a text file\n")
    strict = PairedClipDataset(aligned, VIDEO, WAVE)
    with pytest.raises(MediaError, match=r"v0\.mp4: not a readable media file"):
        strict[0]
    lenient = PairedClipDataset(aligned, VIDEO, WAVE, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="crossmodal"):
        item = lenient[0]
    assert item["id"] == "c1"  # the other clip of track "shared"
    assert item["track"] == 0
    assert "skipping clip 'c0'" in caplog.text
    assert "v0.mp4: not a readable media file" in caplog.text
    assert item["video"].std() > 0  # real frames, never a zero stand-in
    assert lenient[0]["id"] == "c1"  # remembered as bad: not decoded again


def test_skip_gives_up_when_nothing_is_valid(tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"")
    manifest = _manifest(
        tmp_path / "m.jsonl", [{"id": "a", "video": "bad.mp4"}, {"id": "b", "video": "bad.mp4"}]
    )
    ds = PairedClipDataset(manifest, VIDEO, WAVE, on_error="skip")
    with pytest.raises(MediaError, match="no valid clip left"):
        ds[0]


def test_clip_shorter_than_the_window(tmp_path: Path, make_video) -> None:
    make_video("short.mp4", frames=12, fps=FPS)  # 1 s
    manifest = _manifest(tmp_path / "m.jsonl", [{"id": "s", "video": "short.mp4"}])
    with pytest.raises(TooShortError, match="shorter than the 2 s window"):
        PairedClipDataset(manifest, VIDEO, WAVE)[0]


def test_folder_of_videos_pairs_each_with_its_soundtrack(tmp_path: Path, make_video) -> None:
    make_video("folder/a.mp4", frames=36)
    make_video("folder/b.mp4", frames=36)
    ds = PairedClipDataset(tmp_path / "folder", VIDEO, MEL)
    assert ds.track_ids == ["a", "b"]
    assert ds.labels == []
    item = ds[1]
    assert item["label"] == -1
    assert item["start"] == pytest.approx(0.5)  # centre of the probed 3 s


def test_invalid_options(aligned: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        PairedClipDataset(aligned, VIDEO, WAVE, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eval_windows"):
        PairedClipDataset(aligned, VIDEO, WAVE, eval_windows=0)
    with pytest.raises(ValueError, match="missing from the given labels"):
        PairedClipDataset(aligned, VIDEO, WAVE, labels=["calm"])


@pytest.mark.slow
def test_loader_workers_are_seeded_and_repeatable(aligned: Path) -> None:
    ds = PairedClipDataset(aligned, VIDEO, WAVE, train=True)

    def starts(seed: int) -> list[float]:
        loader = make_loader(ds, batch_size=3, shuffle=True, num_workers=2, seed=seed)
        return [s for _ in range(2) for batch in loader for s in batch["start"].tolist()]

    first, again, other = starts(0), starts(0), starts(1)
    assert first == again
    assert first != other
    assert len(set(first)) == len(first)  # workers and epochs draw different windows
