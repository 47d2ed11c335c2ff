"""On-disk layout of an INDEX_DIR and the small files that publish a version.

::

    INDEX_DIR/
      CURRENT                  pointer: {"format", "version", "previous", "published"}
      LOCK                     writer lock (pid of the writer while one runs)
      models/<fingerprint>.pt  the model that embedded the store (queries load it)
      versions/
        000006/                the previous version (kept for readers still using it)
        000007/                the current version, never modified once published
          catalog.sqlite
          music.faiss  music.index.json  [music.tombstones.npy]
          video.faiss  video.index.json  [video.tombstones.npy]
          MANIFEST.json        written last: every file, its size and its SHA-256
        .staging-000008-<pid>  a writer's next version while it is being built

A version is published by renaming its staging folder to its number and then
replacing CURRENT with one ``os.replace``; until that replace, readers see the previous
version, whatever state the writer died in.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossmodal.fileio import atomic_write_text, fsync_path
from crossmodal.retrieval.checksum import file_checksum
from crossmodal.retrieval.errors import IncompatibleStoreError, StoreCorruptError

# Bump when a reader of the old layout could misread the new one.
STORE_FORMAT = 1

POINTER = "CURRENT"
LOCK = "LOCK"
VERSIONS = "versions"
MANIFEST = "MANIFEST.json"
CATALOG = "catalog.sqlite"
MODELS_DIR = "models"
STAGING_PREFIX = ".staging-"


def version_name(number: int) -> str:
    return f"{number:06d}"


def parse_version(name: str) -> int | None:
    """The number of a published version folder name, None for anything else."""
    return int(name) if len(name) == 6 and name.isdigit() else None


@dataclass(frozen=True)
class Pointer:
    """Contents of CURRENT: the published version and the one before it."""

    store_format: int
    version: str
    previous: str | None
    published: str


def read_pointer(root: Path) -> Pointer | None:
    """CURRENT of ``root``, None when there is none; a damaged one raises."""
    path = root / POINTER
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:  # e.g. a folder named CURRENT
        raise StoreCorruptError(
            f"cannot read {path} ({err.strerror}); rebuild the index (crossmodal index ... --rebuild)"
        ) from err
    try:
        data = json.loads(raw.decode("utf-8"))
        pointer = Pointer(
            store_format=int(data["format"]),
            version=str(data["version"]),
            previous=data.get("previous"),
            published=str(data.get("published", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        reason = (
            f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
            if str(err)
            else type(err).__name__
        )
        raise StoreCorruptError(
            f"{path} is damaged ({reason}); rebuild the index (crossmodal index ... --rebuild)"
        ) from err
    if pointer.store_format > STORE_FORMAT:
        raise IncompatibleStoreError(
            f"{root} was written in store format {pointer.store_format} by a newer crossmodal; "
            f"this one reads format {STORE_FORMAT}: upgrade crossmodal or rebuild the index with --rebuild"
        )
    if pointer.store_format < STORE_FORMAT:
        raise IncompatibleStoreError(
            f"{root} uses the old store format {pointer.store_format} (this crossmodal reads "
            f"{STORE_FORMAT}): rebuild the index with --rebuild"
        )
    if parse_version(pointer.version) is None:
        raise StoreCorruptError(
            f"{path} names an invalid version {pointer.version!r}; rebuild the index"
        )
    return pointer


def write_pointer(root: Path, pointer: Pointer) -> None:
    """Publish ``pointer`` atomically (temp file + ``os.replace`` + fsync of the folder)."""
    data = {
        "format": pointer.store_format,
        "version": pointer.version,
        "previous": pointer.previous,
        "published": pointer.published,
    }
    atomic_write_text(root / POINTER, json.dumps(data, indent=2) + "\n")


def write_manifest(
    version_dir: Path, header: dict[str, Any], known: dict[str, dict[str, Any]] | None = None
) -> None:
    """List every file of ``version_dir`` with its size and SHA-256 in MANIFEST.json
    (fsyncs the files). ``known``: entries of files hard-linked from a verified version
    (same inode, so their hash is not computed again)."""
    files = {}
    for entry in sorted(version_dir.iterdir()):
        if entry.name == MANIFEST or entry.name.startswith("."):
            continue
        fsync_path(entry)
        size = entry.stat().st_size
        reuse = (known or {}).get(entry.name)
        if reuse is not None and reuse.get("size") == size and reuse.get("sha256"):
            files[entry.name] = {"size": size, "sha256": reuse["sha256"]}
        else:
            files[entry.name] = {"size": size, "sha256": _hash_file(entry)}
    atomic_write_text(
        version_dir / MANIFEST, json.dumps({**header, "files": files}, indent=2) + "\n"
    )


# Files already hashed by this process: (device, inode, size, mtime_ns) -> sha256 hex.
# Published files never change, so each is hashed once per process, not once per open.
_verified: dict[tuple[int, int, int, int], str] = {}
_verified_lock = threading.Lock()


def _hash_file(path: Path) -> str:
    return file_checksum(path).removeprefix("sha256:")


def check_manifest(version_dir: Path, *, verify: bool = True) -> dict[str, Any]:
    """Read MANIFEST.json and check every listed file: present, its size and (``verify``)
    its SHA-256. Raises :class:`StoreCorruptError` naming the first file that differs.

    Returns the manifest with ``files`` normalised to ``{name: {"size", "sha256"}}``
    (``sha256`` None for versions written before content hashes: their sizes are checked).
    """
    path = version_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = {
            str(name): _manifest_entry(entry) for name, entry in dict(manifest["files"]).items()
        }
    except FileNotFoundError as err:
        raise StoreCorruptError(f"{version_dir} is not a complete version (no {MANIFEST})") from err
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise StoreCorruptError(f"{path} is damaged ({err}); rebuild the index") from err
    for name, entry in files.items():
        target = version_dir / name
        if Path(name).name != name or name in (MANIFEST, "", ".", ".."):
            raise StoreCorruptError(
                f"{path} lists an invalid file name {name!r}; rebuild the index"
            )
        try:
            st = target.stat()
        except FileNotFoundError as err:
            raise StoreCorruptError(f"{version_dir} is missing {name}") from err
        if st.st_size != entry["size"]:
            raise StoreCorruptError(
                f"{target} has {st.st_size} bytes, its manifest says {entry['size']}; rebuild the index"
            )
        if verify and entry["sha256"] is not None:
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            with _verified_lock:
                digest = _verified.get(key)
            if digest is None:
                digest = _hash_file(target)
            if digest != entry["sha256"]:
                raise StoreCorruptError(
                    f"{target} is damaged: its content hash differs from the one recorded when "
                    "it was published; rebuild the index (crossmodal index ... --rebuild)"
                )
            with _verified_lock:
                _verified[key] = digest
    manifest["files"] = files
    return manifest


def _manifest_entry(entry: object) -> dict[str, Any]:
    """One file's manifest entry: ``{"size", "sha256"}`` (a bare size in older versions)."""
    if isinstance(entry, int) and not isinstance(entry, bool):
        return {"size": entry, "sha256": None}
    if not isinstance(entry, dict):
        raise TypeError(f"expected a file entry, got {type(entry).__name__}")
    size, digest = entry["size"], entry.get("sha256")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"bad size {size!r}")
    if digest is not None and not (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    ):
        raise ValueError("bad sha256")
    return {"size": size, "sha256": digest}


def version_numbers(root: Path) -> list[int]:
    """Numbers of every version folder under ``root/versions`` (published or not), ascending."""
    folder = root / VERSIONS
    if not folder.is_dir():
        return []
    numbers = (parse_version(name) for name in os.listdir(folder))
    return sorted(n for n in numbers if n is not None)
