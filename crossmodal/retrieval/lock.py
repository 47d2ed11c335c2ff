"""The single-writer lock of an INDEX_DIR: an ``fcntl.flock`` on a lock file holding the pid.

The kernel drops a flock when its holder dies, so a writer killed mid-update never
blocks the next one; the pid written in the file tells the next writer that it is taking
over from a dead process (logged), and tells a refused writer who holds the lock.
The file is never deleted (deleting a flock file lets two processes lock different inodes).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
from pathlib import Path

from crossmodal.retrieval.errors import StoreLockedError

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """Exclusive writer lock on ``path``; use as a context manager or acquire/release.

    Non-blocking by default (a second writer is refused); ``wait=True`` waits for the
    holder instead (build-once stages, where the second process reuses the first's work).
    """

    def __init__(self, path: str | os.PathLike[str], *, wait: bool = False) -> None:
        self.path = Path(path)
        self.wait = wait
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLockedError` naming the holder's pid."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this object")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read_holder(fd)
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise StoreLockedError(
                f"{self.path.parent} is being updated by another process ({holder or 'unknown pid'}); "
                "wait for it to finish (only one writer at a time)"
            ) from None
        previous = _read_holder(fd)
        if previous:
            pid = _pid_of(previous)
            if pid != os.getpid() and not pid_alive(pid):
                log.warning(
                    "taking over the writer lock of %s left by dead process %s",
                    self.path.parent,
                    previous,
                )
            elif pid != os.getpid():
                # Same pid number alive but no flock: a recycled pid or another host on a shared disk.
                log.warning(
                    "taking over the writer lock of %s last held by %s (not locked)",
                    self.path.parent,
                    previous,
                )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} host {socket.gethostname()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Clear the pid and drop the lock (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _pid_of(holder: str) -> int:
    parts = holder.split()
    try:
        return int(parts[1]) if len(parts) >= 2 and parts[0] == "pid" else -1
    except ValueError:
        return -1
