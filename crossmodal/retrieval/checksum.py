"""Content checksum of media files, used to tell a changed file from an unchanged one."""

from __future__ import annotations

import hashlib
import os

# Large reads keep the hashing I/O-bound rather than call-bound.
_CHUNK = 1 << 20


def file_checksum(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes as ``"sha256:<hex>"`` (streams; constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
