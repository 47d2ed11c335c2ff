"""On-disk feature cache keyed by file content and parameters.

An entry is one ``.npz`` (uncompressed, no pickle) of named arrays under
``root/<key[:2]>/<key>.npz``. The key is the SHA-256 of the source file's fingerprint
and the parameters that produced the arrays (a JSON-able mapping: the spec dict, the
segment, ...), so changing either misses and recomputes; nothing is ever invalidated in
place. Fingerprints:

- ``"fast"`` (default): size, modification time (ns) and SHA-256 of the first and last
  MiB. Any rewrite of the file changes its mtime; a copy made with a new mtime misses
  once and is cached again.
- ``"full"``: SHA-256 of the whole file (content only: copies and ``touch`` still hit).

Writes go to a temporary file in the entry's folder and are renamed into place, so
parallel DataLoader workers and interrupted runs never leave a partial entry; an
unreadable entry is logged, removed and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crossmodal.fileio import atomic_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def _hash_file(path: Path, mode: str) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        if mode == "full":
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
        else:
            digest.update(f.read(CHUNK))
            size = path.stat().st_size
            if size > CHUNK:
                f.seek(max(CHUNK, size - CHUNK))
                digest.update(f.read(CHUNK))
    return digest.hexdigest()


def module_fingerprint(module: Any, extra: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of a torch module's class, parameter/buffer names, shapes, dtypes and
    values (plus ``extra``): the backbone part of a frozen-feature cache key."""
    import torch

    digest = hashlib.sha256()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        # Raw bytes via uint8 so that dtypes numpy lacks (bfloat16) hash too.
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if extra:
        digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class FeatureCache:
    """Arrays computed from a media file, stored on disk under a content+params key.

    ``get_or_compute(path, params, compute)`` is the usual entry point; ``features(path,
    params, backbone, compute)`` adds a backbone fingerprint (see
    :func:`module_fingerprint`) to the key, for frozen-backbone embeddings. ``hits`` and
    ``misses`` count lookups in this process.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, fingerprint: Literal["fast", "full"] = "fast"
    ) -> None:
        if fingerprint not in ("fast", "full"):
            raise ValueError(f"fingerprint must be 'fast' or 'full', got {fingerprint!r}")
        self.root = Path(root)
        self.mode = fingerprint
        self.hits = 0
        self.misses = 0
        self._fingerprints: dict[tuple[str, int, int], str] = {}

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r}, fingerprint={self.mode!r})"

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers get a copy; counters and memo start fresh there.
        return {"root": self.root, "mode": self.mode}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], fingerprint=state["mode"])  # type: ignore[misc]

    def fingerprint(self, path: str | os.PathLike[str]) -> str:
        """The file's identity as described in the module docstring (memoised on
        path, size and mtime)."""
        path = Path(path)
        stat = path.stat()
        memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if memo not in self._fingerprints:
            content = _hash_file(path, self.mode)
            if self.mode == "full":
                self._fingerprints[memo] = f"full:{content}"
            else:
                self._fingerprints[memo] = f"fast:{stat.st_size}:{stat.st_mtime_ns}:{content}"
        return self._fingerprints[memo]

    def key(self, path: str | os.PathLike[str], params: Mapping[str, Any]) -> str:
        """Hex key of (file fingerprint, params); params must be JSON-serialisable."""
        blob = json.dumps(
            {"file": self.fingerprint(path), "params": params}, sort_keys=True, default=_jsonable
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None (missing or unreadable entry)."""
        entry = self._entry(key)
        if not entry.exists():
            return None
        try:
            with np.load(entry, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            log.warning("cache entry %s is unreadable (%s); recomputing it", entry, err)
            entry.unlink(missing_ok=True)
            return None

    def put(self, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` atomically (temporary file + rename)."""
        with atomic_path(self._entry(key)) as tmp, tmp.open("wb") as f:
            np.savez(f, **{name: np.asarray(a) for name, a in arrays.items()})

    def get_or_compute(
        self,
        path: str | os.PathLike[str],
        params: Mapping[str, Any],
        compute: Callable[[], Mapping[str, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        """Cached arrays for (file, params), computing and storing them on a miss."""
        key = self.key(path, params)
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        arrays = {name: np.asarray(a) for name, a in compute().items()}
        self.put(key, arrays)
        return arrays

    def features(
        self,
        path: str | os.PathLike[str],
        params: Mapping[str, Any],
        backbone: str,
        compute: Callable[[], Mapping[str, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        """Frozen-backbone features of a file: like :meth:`get_or_compute` with the
        backbone's fingerprint (e.g. :func:`module_fingerprint`) in the key."""
        return self.get_or_compute(path, {**params, "backbone": backbone}, compute)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cache parameters must be JSON-serialisable, got {type(value).__name__}")
