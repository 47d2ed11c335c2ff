from __future__ import annotations

from pathlib import Path

import pytest

from crossmodal.data import CorruptMediaError, MissingMediaError, probe


def test_probe_reads_streams_without_decoding(make_video) -> None:
    path = make_video("a.mp4", frames=36, fps=12, size=(48, 80), sample_rate=22050)
    info = probe(path)
    assert info.has_video
    assert info.has_audio
    assert (info.width, info.height) == (80, 48)
    assert info.fps == pytest.approx(12.0)
    assert info.frame_count == 36
    assert info.video_duration == pytest.approx(3.0, abs=1e-3)
    assert info.sample_rate == 22050
    assert info.channels == 1
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert not info.variable_frame_rate
    assert info.size_bytes == path.stat().st_size


def test_probe_video_without_audio_and_audio_only(make_video, make_audio, helpers) -> None:
    silent = probe(make_video("silent.mp4", audio=None))
    assert silent.has_video
    assert not silent.has_audio
    assert silent.sample_rate is None
    wav = probe(make_audio("a.wav", helpers.tone(1.5, 8000), 8000))
    assert not wav.has_video
    assert wav.has_audio
    assert wav.sample_rate == 8000
    assert wav.audio_duration == pytest.approx(1.5)


def test_probe_flags_variable_frame_rate(make_video) -> None:
    times = [0.0, 0.04, 0.08, 0.5, 0.54, 1.2, 1.24, 1.28, 2.0, 2.04]
    info = probe(make_video("vfr.mp4", frames=len(times), frame_times=times, audio=None))
    assert info.variable_frame_rate
    assert info.frame_count == len(times)


def test_probe_errors_name_the_file_and_reason(tmp_path: Path) -> None:
    with pytest.raises(MissingMediaError, match="no such file") as missing:
        probe(tmp_path / "nope.mp4")
    assert missing.value.path.endswith("nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(CorruptMediaError, match=r"empty file \(0 bytes\)"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(CorruptMediaError, match="not a readable media file"):
        probe(tmp_path / "notes.mp4")
    with pytest.raises(MissingMediaError, match="not a regular file"):
        probe(tmp_path)
