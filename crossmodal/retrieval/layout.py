"""On-disk layout of an INDEX_DIR and the small files that publish a version.

::

    INDEX_DIR/
      CURRENT                  pointer: {"format", "version", "previous", "published"}
      LOCK                     writer lock (pid of the writer while one runs)
      versions/
        000006/                the previous version (kept for readers still using it)
        000007/                the current version, never modified once published
          catalog.sqlite
          music.faiss  music.index.json  [music.tombstones.npy]
          video.faiss  video.index.json  [video.tombstones.npy]
          MANIFEST.json        written last: every file and its size
        .staging-000008-<pid>  a writer's next version while it is being built

A version is published by renaming its staging folder to its number and then
replacing CURRENT with one ``os.replace``; until that replace, readers see the previous
version, whatever state the writer died in.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossmodal.fileio import atomic_write_text, fsync_path
from crossmodal.retrieval.errors import IncompatibleStoreError, StoreCorruptError

# Bump when a reader of the old layout could misread the new one.
STORE_FORMAT = 1

POINTER = "CURRENT"
LOCK = "LOCK"
VERSIONS = "versions"
MANIFEST = "MANIFEST.json"
CATALOG = "catalog.sqlite"
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        pointer = Pointer(
            store_format=int(data["format"]),
            version=str(data["version"]),
            previous=data.get("previous"),
            published=str(data.get("published", "")),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise StoreCorruptError(
            f"{path} is damaged ({err}); rebuild the index (crossmodal index ... --rebuild)"
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


def write_manifest(version_dir: Path, header: dict[str, Any]) -> None:
    """List every file of ``version_dir`` with its size in MANIFEST.json (fsyncs the files)."""
    files = {}
    for entry in sorted(version_dir.iterdir()):
        if entry.name == MANIFEST or entry.name.startswith("."):
            continue
        fsync_path(entry)
        files[entry.name] = entry.stat().st_size
    atomic_write_text(
        version_dir / MANIFEST, json.dumps({**header, "files": files}, indent=2) + "\n"
    )


def check_manifest(version_dir: Path) -> dict[str, Any]:
    """Read MANIFEST.json and check every listed file exists with its size."""
    path = version_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except FileNotFoundError as err:
        raise StoreCorruptError(f"{version_dir} is not a complete version (no {MANIFEST})") from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise StoreCorruptError(f"{path} is damaged: {err}") from err
    for name, size in files.items():
        try:
            actual = (version_dir / name).stat().st_size
        except FileNotFoundError as err:
            raise StoreCorruptError(f"{version_dir} is missing {name}") from err
        if actual != size:
            raise StoreCorruptError(
                f"{version_dir / name} has {actual} bytes, its manifest says {size}"
            )
    return manifest


def version_numbers(root: Path) -> list[int]:
    """Numbers of every version folder under ``root/versions`` (published or not), ascending."""
    folder = root / VERSIONS
    if not folder.is_dir():
        return []
    numbers = (parse_version(name) for name in os.listdir(folder))
    return sorted(n for n in numbers if n is not None)
