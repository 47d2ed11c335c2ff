"""Content hashes: the full SHA-256 of a file, and the cheap signature that tells a changed
media file from an unchanged one without reading it all."""

from __future__ import annotations

import hashlib
import os

# Large reads keep the hashing I/O-bound rather than call-bound.
_CHUNK = 1 << 20
# The signature reads this much at the head and at the tail of a file (all of a small one).
SIGNATURE_BLOCK = 1 << 16
SIGNATURE_PREFIX = "sig1:"


def file_checksum(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes as ``"sha256:<hex>"`` (streams; constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def file_signature(path: str | os.PathLike[str], st: os.stat_result | None = None) -> str:
    """``"sig1:<hex>"``: SHA-256 of the size, the mtime in nanoseconds and the first and
    last 64 KiB of the file (the whole file when it is at most 128 KiB).

    Two reads per file whatever its size, so re-scanning a large library stays cheap; it
    catches any change of size or mtime and any edit of the head or tail (where containers
    keep their headers and indexes), even one that restores the mtime. ``st``: a
    ``stat`` of ``path`` taken by the caller, reused.
    """
    with open(path, "rb") as f:
        st = st or os.fstat(f.fileno())
        digest = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:".encode())
        if st.st_size <= 2 * SIGNATURE_BLOCK:
            digest.update(f.read())
        else:
            digest.update(f.read(SIGNATURE_BLOCK))
            f.seek(-SIGNATURE_BLOCK, os.SEEK_END)
            digest.update(f.read(SIGNATURE_BLOCK))
    return f"{SIGNATURE_PREFIX}{digest.hexdigest()}"
