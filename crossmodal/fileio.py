"""Atomic, durable file writes: a reader sees the old file or the new one, never half of one.

Every write that matters (checkpoints, models, manifests, cache entries, index files,
reports) goes through :func:`atomic_path`: a temporary file in the target's folder is
filled, fsynced and renamed over the target with ``os.replace``, then the folder is
fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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
        os.replace(tmp, path)
        fsync_path(path.parent, missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)


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
