"""Atomic, durable file writes: a reader sees the old file or the new one, never half of one.

Every write that matters (checkpoints, models, manifests, cache entries, index files,
reports) goes through :func:`atomic_path`: a temporary file in the target's folder is
filled, fsynced and renamed over the target with ``os.replace``, then the folder is
fsynced so the rename itself survives a crash. The new file gets the mode a plain
``open(path, "w")`` would give it (``0o666`` minus the umask), or the mode of the file it
replaces: temporary files are created private (0600), and that must not leak into outputs.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over
    ``path``. On an exception the temporary file is removed and ``path`` is untouched.
    The temporary name keeps ``path``'s suffix, so writers that pick a format from the
    extension (PyAV, numpy) behave as with the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_path(tmp)
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
        fsync_path(path.parent, missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)


NOT_UTF8_NAME = (
    "its name is not valid UTF-8 (undecodable bytes shown as \\x..): rename it, e.g. with "
    "`convmv -f latin1 -t utf8 --notest FILE`"
)


def utf8_name(path: str | os.PathLike[str]) -> bool:
    """False when ``path`` holds bytes that are not UTF-8 (Python keeps them as lone
    surrogates): the catalog, JSON and the decoders cannot take such a name."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it is process-wide)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:  # no /proc: the only portable way to read it is to set it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """The permission bits ``path`` should end with: those of the file it replaces, else
    what ``open()`` would create (0o666 minus the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def temp_files_of(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files :func:`atomic_path` would leave beside ``path`` if killed mid-write."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{glob_escape(path.stem)}.*.tmp{glob_escape(path.suffix)}"))


def remove_temp_files_of(path: str | os.PathLike[str]) -> int:
    """Delete the leftovers of killed writes of ``path``; returns how many were removed.

    Call only where no other process can be writing ``path`` at the same time (under the
    store's writer lock, by the one process that saves a checkpoint).
    """
    removed = 0
    for tmp in temp_files_of(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped (``glob.escape`` for one name)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """``write(tmp)`` fills a temporary file that then atomically replaces ``path``
    (for writers that take a file name, e.g. ``faiss.write_index``)."""
    with atomic_path(path) as tmp:
        write(str(tmp))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_path(path: str | os.PathLike[str], missing_ok: bool = False) -> None:
    """Flush a file, or a folder's entries (POSIX), to disk. ``missing_ok``: a platform
    or filesystem that cannot open/fsync a folder is not an error."""
    flags = os.O_RDONLY
    if Path(path).is_dir():
        flags |= getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if missing_ok:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not missing_ok:
            raise
    finally:
        os.close(fd)


def user_cache_dir(name: str) -> Path:
    """The one per-user cache root: ``$XDG_CACHE_HOME/crossmodal/<name>``
    (``~/.cache/crossmodal/<name>``). Every default cache folder (decoded features,
    notebook assets) is a ``name`` under it."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crossmodal" / name
