from __future__ import annotations

from pathlib import Path

import pytest

from crossmodal.fileio import atomic_path, atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")

    def write_then_fail() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_files_get_the_umask_mode_not_0600(tmp_path: Path, umask: int) -> None:
    import os
    import stat

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "model.pt", "x")
        with atomic_path(tmp_path / "index.faiss") as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    for name in ("model.pt", "index.faiss"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_replacing_a_file_keeps_its_mode(tmp_path: Path) -> None:
    import os
    import stat

    target = tmp_path / "private.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write_text(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
