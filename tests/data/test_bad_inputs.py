"""The issue's bad inputs met by the dataset: a specific error, or a logged skip, never
a crashed epoch and never a zero-filled stand-in."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from crossmodal.data import AudioSpec, MediaError, PairedClipDataset, VideoSpec, make_loader

SPEC_V = VideoSpec(num_frames=4, height=32, width=32)
SPEC_A = AudioSpec(sample_rate=16000, seconds=2.0, n_mels=32)
GOOD = {"good", "unicode", "external"}


def test_raise_policy_gives_each_bad_clip_its_specific_error(
    mixed: Path, mixed_expected: dict
) -> None:
    ds = PairedClipDataset(mixed, SPEC_V, SPEC_A)
    for i, record in enumerate(ds.records):
        if record.id in GOOD:
            item = ds[i]
            assert item["video"].std() > 0
            continue
        name, kind, reason = mixed_expected[record.id]
        with pytest.raises(MediaError) as caught:
            ds[i]
        assert Path(caught.value.path).name == name, record.id
        assert type(caught.value).__name__ == kind, record.id
        # The dataset checks the window against the clip before decoding, so a clip too
        # short for it says so whichever stream is short.
        assert reason in str(caught.value) or kind == "TooShortError", (
            record.id,
            str(caught.value),
        )


def test_skip_policy_finishes_the_epoch_with_real_items(mixed: Path, caplog) -> None:
    ds = PairedClipDataset(mixed, SPEC_V, SPEC_A, train=True, on_error="skip")
    loader = make_loader(ds, batch_size=4, shuffle=True, seed=0)
    seen = []
    with caplog.at_level(logging.WARNING, logger="crossmodal"):
        for batch in loader:
            assert batch["video"].shape[1:] == (3, 4, 32, 32)
            for video, audio, clip in zip(batch["video"], batch["audio"], batch["id"], strict=True):
                assert clip in GOOD
                assert video.std() > 0  # real frames
                assert torch.isfinite(audio).all()
                assert audio.std() > 0  # real sound, not a zero stand-in
            seen.extend(batch["id"])
    assert len(seen) == len(ds)
    bad = [r.id for r in ds.records if r.id not in GOOD]
    for clip in bad:
        assert f"skipping clip {clip!r}" in caplog.text
    assert "empty file (0 bytes)" in caplog.text
    assert "no such file" in caplog.text


@pytest.mark.parametrize("rate", [8000, 96000])
def test_unusual_sample_rates_reach_the_spec_rate(
    tmp_path: Path, make_video, helpers, manifest_writer, rate: int
) -> None:
    make_video("clip.mp4", frames=36, audio=helpers.tone(3.0, rate, freq=1000.0), sample_rate=rate)
    wave_spec = AudioSpec(sample_rate=16000, seconds=2.0, representation="waveform")
    item = PairedClipDataset(
        manifest_writer(tmp_path, [{"id": "c", "video": "clip.mp4"}]), SPEC_V, wave_spec
    )[0]
    audio = item["audio"].numpy()
    assert audio.shape == (32000,)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert np.fft.rfftfreq(len(audio), 1 / 16000)[spectrum.argmax()] == pytest.approx(1000.0, abs=2)
