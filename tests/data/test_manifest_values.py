"""Hostile manifest values end in one ManifestError naming the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossmodal.apps.cli import main
from crossmodal.data import read_manifest
from crossmodal.data.errors import ManifestError


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "manifest.jsonl"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"id": "a", "video": "a.mp4", "start": 1' + "0" * 400 + "}", "'start'"),
        ('{"id": "a", "video": "a.mp4", "end": ' + "9" * 5000 + "}", "invalid value"),
        ('{"id": 1' + "0" * 400 + ', "video": "a.mp4"}', "'id'"),
        ('{"id": "a", "video": "a\\u0000.mp4"}', "NUL"),
        ('{"id": "a", "video": "a.mp4", "audio": "\\ud800.wav"}', "'audio'"),
        ('{"id": "a", "video": "a.mp4", "end": 1e308}', "'end'"),
        ('{"id": "a", "video": "a.mp4", "start": -0.5}', ">= 0"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ],
)
def test_bad_values_name_the_line_and_field(tmp_path: Path, line: str, needle: str) -> None:
    path = _write(tmp_path, line + "\n")
    with pytest.raises(ManifestError) as exc:
        read_manifest(path)
    message = str(exc.value)
    assert f"{path}:1" in message or f"{path}: " in message
    assert needle in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ('{"id": "a", "video": "a.mp4"}\n'.encode("utf-16"), "UTF-16"),
        ('{"id": "a", "video": "a.mp4"}\n'.encode("utf-16-le"), "UTF-16"),
        (b'{"id": "a", "video": "a.mp4"}\n' + bytes(range(128, 256)) * 20, "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not"),
        (b'{"id": "a", "video": "a.mp4"}\n\x00\x00\x00\n', "NUL"),
    ],
)
def test_non_utf8_manifests_are_refused_in_one_line(
    tmp_path: Path, data: bytes, needle: str
) -> None:
    with pytest.raises(ManifestError, match=needle):
        read_manifest(_write(tmp_path, data))


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (record,) = read_manifest(_write(tmp_path, '\ufeff{"id": "a", "video": "a.mp4"}\n'))
    assert record.id == "a"


def test_cli_prints_one_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, '{"id": "a", "video": "a.mp4", "start": 1' + "0" * 400 + "}\n")
    assert main(["data", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "'start'" in err


def test_paths_can_be_confined_to_a_media_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "link.mp4").symlink_to("/etc/passwd")
    inside = '{"id": "a", "video": "a.mp4"}\n'
    for escaping in (
        '{"id": "b", "video": "../secret.mp4"}\n',
        '{"id": "b", "video": "/etc/passwd"}\n',
        '{"id": "b", "video": "a.mp4", "audio": "link.mp4"}\n',
    ):
        path = media / "manifest.jsonl"
        path.write_text(inside + escaping)
        assert len(read_manifest(path)) == 2  # no root: paths may point anywhere
        with pytest.raises(ManifestError, match="outside the media root"):
            read_manifest(path, media_root=media)
        monkeypatch.setenv("CROSSMODAL_MEDIA_ROOT", str(media))
        with pytest.raises(ManifestError, match="clip 'b'"):
            read_manifest(path)
        monkeypatch.delenv("CROSSMODAL_MEDIA_ROOT")
    path.write_text(inside)
    assert [r.id for r in read_manifest(path, media_root=media)] == ["a"]
