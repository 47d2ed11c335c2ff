"""Libraries as users have them: streams that end before their headers say, folders of
music, manifests with music-only or video-only rows, and `data check` by role."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from crossmodal.apps.cli import main
from crossmodal.data import check_manifest, read_manifest, scan_folder
from crossmodal.data.formats import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, shortfall_tolerance
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.data.writer import write_media

from .conftest import painted_frames, tone

SPEC_V = VideoSpec(num_frames=4, height=32, width=32)
SPEC_A = AudioSpec(seconds=2.0, n_mels=32)


def _short_soundtrack(path: Path, video_seconds: float, audio_seconds: float) -> Path:
    """A Matroska file whose audio stream stops before its video (and so before the
    duration the container declares for both)."""
    frames = round(video_seconds * 12)
    return write_media(path, painted_frames(frames, 32, 32), 12.0, tone(audio_seconds, 16000))


def test_tolerance_rule() -> None:
    assert shortfall_tolerance(None) == 1.0
    assert shortfall_tolerance(8.0) == 1.0
    assert shortfall_tolerance(100.0) == pytest.approx(5.0)


def test_a_soundtrack_a_little_short_is_a_note_and_far_short_is_truncation(
    tmp_path: Path, manifest_writer
) -> None:
    from crossmodal.data import probe

    small = _short_soundtrack(tmp_path / "small gap.mkv", 9.0, 8.1)
    large = _short_soundtrack(tmp_path / "large gap.mkv", 9.0, 6.0)
    # The container declares the video's length for the audio stream too.
    assert probe(small).audio_duration == pytest.approx(9.0, abs=0.05)
    manifest = manifest_writer(
        tmp_path, [{"id": "small", "video": small.name}, {"id": "large", "video": large.name}]
    )
    count, found = check_manifest(manifest, SPEC_V, SPEC_A, isolate=False)
    assert count == 2
    by_clip = {p.clip_id: p for p in found}
    assert by_clip["small"].level == "note"
    assert "short of the declared 9.000 s" in by_clip["small"].reason
    assert "tolerated" in by_clip["small"].reason
    assert by_clip["large"].level == "problem"
    assert by_clip["large"].kind == "CorruptMediaError"
    assert "truncated or corrupt file" in by_clip["large"].reason


def test_check_passes_only_what_index_takes(tmp_path: Path) -> None:
    """The check decodes what the indexer decodes: every window, not only the centre."""
    from crossmodal.data.ingest import WindowJob, ingest

    small = _short_soundtrack(tmp_path / "gap.mkv", 9.0, 8.1)
    for role, modality in (("music", "music"), ("video", "video")):
        _, found = check_manifest(
            [read_manifest(tmp_path, "video")[0]], SPEC_V, SPEC_A, role=role, isolate=False
        )
        assert all(p.level == "note" for p in found)
        events = list(ingest([WindowJob(small, modality, SPEC_V, SPEC_A, hop=1.0)]))
        assert events[-1] == (0, "done")


def test_cli_check_exits_0_on_notes_and_names_its_role(
    tmp_path: Path, manifest_writer, capsys: pytest.CaptureFixture[str]
) -> None:
    _short_soundtrack(tmp_path / "gap.mkv", 9.0, 8.1)
    manifest = manifest_writer(tmp_path, [{"id": "gap", "video": "gap.mkv"}])
    args = ["data", "check", str(manifest), "--no-isolate", "--size", "32", "--seconds", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "for the pairs role (assumed" in captured.err
    assert "note: " in captured.out
    assert "checked 1 clips (pairs): no problems, 1 notes" in captured.out


def _music_folder(root: Path) -> Path:
    music = root / "my music"
    (music / "album").mkdir(parents=True)
    write_media(music / "album" / "song one.ogg", None, audio=tone(3.0, 48000), sample_rate=48000, audio_codec="libopus")  # fmt: skip
    write_media(music / "chanson ünï.flac", None, audio=tone(3.0, 48000), sample_rate=48000, audio_codec="flac")  # fmt: skip
    write_media(music / "old.aiff", None, audio=tone(3.0, 22050), sample_rate=22050, audio_codec="pcm_s16be", container_format="aiff")  # fmt: skip
    # ffmpeg's own Vorbis encoder (this PyAV has no libvorbis) writes stereo only.
    write_media(music / "radio.oga", None, audio=np.stack([tone(3.0, 44100)] * 2), sample_rate=44100, audio_codec="vorbis", container_format="ogg")  # fmt: skip
    write_media(music / "clip.mpg", painted_frames(72, 32, 32), 24.0, tone(3.0, 16000), 16000, video_codec="mpeg1video", audio_codec="mp2", container_format="mpeg")  # fmt: skip
    (music / "cover.jpg").write_bytes(b"\xff\xd8 not really")
    (music / "notes.txt").write_text("liner notes")
    return music


def test_folder_scans_take_every_decodable_extension_and_say_what_they_skip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    music = _music_folder(tmp_path)
    scan = scan_folder(music, "music")
    names = sorted(p.name for p in scan.files)
    assert names == ["chanson ünï.flac", "clip.mpg", "old.aiff", "radio.oga", "song one.ogg"]
    assert "skipped 2 file(s), not a media extension the decoders read: .jpg (1), .txt (1)" in (
        scan.describe_skipped()
    )
    videos = scan_folder(music, "video")
    assert [p.name for p in videos.files] == ["clip.mpg"]
    assert "no video stream: .ogg (1)" in videos.describe_skipped()
    assert "music only, not a video: .aiff (1), .flac (1), .oga (1)" in videos.describe_skipped()
    # Every extension scanned is one ffmpeg has a demuxer for (the decoders' list).
    assert {".ogv", ".mpg", ".aiff", ".oga"} <= set(VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
    with caplog.at_level(logging.WARNING):
        records = read_manifest(music, "music")
    assert len(records) == 5
    assert all(r.video is None and r.audio is not None for r in records)
    assert "skipped 2 file(s)" in caplog.text


def test_data_check_of_a_music_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    music = _music_folder(tmp_path)
    args = ["data", "check", str(music), "--no-isolate", "--size", "32", "--seconds", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "for the pairs role (assumed: the folder holds videos" in captured.err
    assert main([*args, "--role", "music"]) == 0
    assert "checked 5 clips (music): no problems" in capsys.readouterr().out
    (music / "clip.mpg").unlink()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "for the music role (assumed: the folder holds no videos" in captured.err
    assert "checked 4 clips (music): no problems" in captured.out


def test_manifest_roles(tmp_path: Path, manifest_writer, capsys) -> None:
    music = _music_folder(tmp_path)
    manifest = manifest_writer(
        tmp_path,
        [
            {"id": "a", "video": None, "audio": "my music/album/song one.ogg"},
            {"id": "b", "audio": "my music/old.aiff"},
        ],
    )
    records = read_manifest(manifest)
    assert [r.video for r in records] == [None, None]
    assert records[1].music == music / "old.aiff"
    args = ["data", "check", str(manifest), "--no-isolate", "--size", "32", "--seconds", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "for the music role (assumed: no row has a video" in captured.err
    assert main([*args, "--role", "video", "--json"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["reason"] for line in lines} == {"the row has no video"}

    from crossmodal.data import PairedClipDataset
    from crossmodal.data.errors import ManifestError

    with pytest.raises(ManifestError, match="training pairs a video with its music"):
        PairedClipDataset(manifest, SPEC_V, SPEC_A)


def test_truncation_is_not_claimed_for_a_file_shorter_than_a_window(tmp_path: Path) -> None:
    write_media(tmp_path / "one second.mp4", painted_frames(12, 32, 32), 12.0, tone(1.0, 16000), 16000)  # fmt: skip
    _, found = check_manifest([read_manifest(tmp_path)[0]], SPEC_V, SPEC_A, isolate=False)
    assert {p.kind for p in found} == {"TooShortError"}
    assert not any("truncated" in p.reason for p in found)
