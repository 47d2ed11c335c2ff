from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossmodal.data import ClipRecord, ManifestError, read_manifest, select_split, write_manifest


def _write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    manifest = _write_lines(
        tmp_path / "m.jsonl",
        [
            {"id": "a", "video": "v/a.mp4"},
            {
                "id": 7,
                "video": "/abs/b.mp4",
                "audio": "music/b.flac",
                "track_id": "song",
                "label": "calm",
                "split": "test",
                "start": 1.5,
                "end": 5,
                "mood_score": 0.3,
            },
            "",
        ],
    )
    a, b = read_manifest(manifest)
    assert a == ClipRecord(id="a", video=tmp_path / "v/a.mp4")
    assert a.audio is None
    assert a.music == a.video  # audio null: the video's own soundtrack
    assert a.track_id == "a"  # default match key: the id
    assert (a.label, a.split, a.start, a.end) == (None, None, 0.0, None)
    assert b.id == "7"
    assert b.video == Path("/abs/b.mp4")
    assert b.music == tmp_path / "music/b.flac"
    assert (b.track_id, b.label, b.split, b.start, b.end) == ("song", "calm", "test", 1.5, 5.0)
    assert b.extra == {"mood_score": 0.3}


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    records = [
        ClipRecord(id="x", video=tmp_path / "vids/x y.mp4", label="joyful", split="train", end=4.0),
        ClipRecord(id="ü", video=Path("/elsewhere/ü.mp4"), audio=tmp_path / "a.wav", track_id="t1"),
    ]
    path = write_manifest(records, tmp_path / "manifest.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["video"] == "vids/x y.mp4"  # relative to the manifest's folder
    assert lines[1]["video"] == "/elsewhere/ü.mp4"
    assert set(lines[0]) == {"id", "video", "audio", "track_id", "label", "split", "start", "end"}
    assert read_manifest(path) == records
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"m.jsonl:2: invalid JSON"),
        ('["a", "b"]', r"m.jsonl:2: expected a JSON object"),
        ({"video": "b.mp4"}, r"m.jsonl:2: 'id' is required"),
        ({"id": "b"}, r"m.jsonl:2: 'video' or 'audio' is required"),
        ({"id": "b", "video": ""}, r"'video' is empty"),
        ({"id": "b", "video": 3.5}, r"'video' must be a string, got float"),
        ({"id": "b", "video": "b.mp4", "start": "1"}, r"'start' must be a finite number"),
        ({"id": "b", "video": "b.mp4", "start": -1}, r"'start' must be >= 0"),
        ({"id": "b", "video": "b.mp4", "start": 3, "end": 2}, r"'end' \(2.0\) must be greater"),
        ({"id": "a", "video": "b.mp4"}, r"m.jsonl:2: duplicate id 'a' \(first on line 1\)"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: object, message: str) -> None:
    manifest = _write_lines(tmp_path / "m.jsonl", [{"id": "a", "video": "a.mp4"}, line])
    with pytest.raises(ManifestError, match=message):
        read_manifest(manifest)


def test_empty_or_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="lists no clips"):
        read_manifest(_write_lines(tmp_path / "m.jsonl", ["", "  "]))
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "absent.jsonl")


def test_a_folder_of_videos_is_a_manifest(tmp_path: Path) -> None:
    for name in ("b/two.MP4", "a/one.mkv", "notes.txt", "c/three.webm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    records = read_manifest(tmp_path)
    assert [r.id for r in records] == ["a/one", "b/two", "c/three"]
    assert all(r.audio is None and r.track_id == r.id for r in records)
    # A folder holding a manifest.jsonl means that manifest.
    _write_lines(tmp_path / "manifest.jsonl", [{"id": "only", "video": "a/one.mkv"}])
    assert [r.id for r in read_manifest(tmp_path)] == ["only"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match=r"no manifest\.jsonl and no videos"):
        read_manifest(empty)


def test_select_split() -> None:
    records = [
        ClipRecord(id=str(i), video=Path(f"{i}.mp4"), split=s)
        for i, s in enumerate(["train", "test", "train", None])
    ]
    assert [r.id for r in select_split(records, "train")] == ["0", "2"]
    assert len(select_split(records, None)) == 4
    with pytest.raises(
        ManifestError, match=r"no clips in split 'val' \(splits present: None, test, train\)"
    ):
        select_split(records, "val")
