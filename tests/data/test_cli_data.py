from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossmodal.apps.cli import main


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "corpus"
    code = main(
        [
            "-q",
            "synth",
            str(out),
            "--clips",
            "6",
            "--size",
            "32",
            "--duration",
            "1.5",
            "--split",
            "2,1,3",
            "--seed",
            "4",
        ]
    )
    assert code == 0
    return out / "manifest.jsonl"


def test_synth_writes_the_corpus(tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [json.loads(line) for line in tiny_corpus.read_text().splitlines()]
    assert [line["split"] for line in lines].count("test") == 3
    assert all((tiny_corpus.parent / line["video"]).is_file() for line in lines)
    info = json.loads((tiny_corpus.parent / "synth.json").read_text())
    assert info["config"]["seed"] == 4
    assert info["splits"] == {"train": 2, "val": 1, "test": 3}
    # A second run into the same folder refuses to replace it.
    assert main(["-q", "synth", str(tiny_corpus.parent), "--clips", "2"]) == 2


def test_synth_rejects_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:  # refused by the parser, before any work
        main(["synth", str(tmp_path / "x"), "--workers", "0"])
    assert exc.value.code == 2
    assert main(["synth", str(tmp_path / "x"), "--clips", "10", "--split", "5,5,5"]) == 2
    assert "--split" in capsys.readouterr().err


def test_data_check_reports_ok_then_problems(
    tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "-q",
        "data",
        "check",
        str(tiny_corpus),
        "--no-isolate",
        "--size",
        "32",
        "--seconds",
        "1",
    ]
    assert main(args) == 0
    assert "checked 6 clips (pairs): no problems" in capsys.readouterr().out
    broken = tmp_path / "manifest.jsonl"
    broken.write_text(
        json.dumps({"id": "ok", "video": str(tiny_corpus.parent / "videos/clip_000000.mp4")})
        + "\n"
        + json.dumps({"id": "bad", "video": "missing file.mp4"})
        + "\n"
    )
    assert main([*args[:3], str(broken), *args[4:]]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'missing file.mp4'}: no such file  [clip bad]" in out
    assert "checked 2 clips (pairs): 1 problems in 1 files" in out
    assert main([*args[:3], str(broken), *args[4:], "--json"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {
        "clip_id": "bad",
        "path": str(tmp_path / "missing file.mp4"),
        "reason": "no such file",
        "kind": "MissingMediaError",
        "level": "problem",
    }


def test_data_check_malformed_manifest_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"id": "a"}\n')
    assert main(["data", "check", str(bad), "--no-isolate"]) == 2
    assert "m.jsonl:1: 'video' or 'audio' is required" in capsys.readouterr().err


def test_data_probe(tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tiny_corpus.parent / "videos/clip_000001.mp4"
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert main(["data", "probe", str(video), str(tmp_path / "empty.mp4")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{video}: 1.5")
    assert "video h264 32x32 12.000 fps, 18 frames; audio aac 16000 Hz, 1 ch" in out[0]
    assert out[1] == f"{tmp_path / 'empty.mp4'}: empty file (0 bytes)"
    assert main(["data", "probe", "--json", str(video)]) == 0
    assert json.loads(capsys.readouterr().out)["frame_count"] == 18


def test_data_coupling_prints_the_table(
    tiny_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "coupling", str(tiny_corpus), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "envelope-correlation retrieval on 3 clips (split test)" in out
    assert "video → music" in out
    assert "chance" in out
