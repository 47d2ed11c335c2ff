"""Manifests: which clips exist, where their video and music are, what matches what.

A manifest is JSONL, one clip a line::

    {"id": "clip_000001", "video": "videos/clip_000001.mp4", "audio": null,
     "track_id": "clip_000001", "label": "joyful", "split": "train", "start": 0.0, "end": 4.0}

``id`` (required, unique) names the clip. ``video`` and ``audio`` are paths, relative to
the manifest's folder unless absolute; a row needs at least one. ``audio: null`` (the
default) means the video's own soundtrack is its music; ``video: null`` makes a
music-only row (a music library for ``index --music``; training needs both). ``track_id`` is the match key (default: ``id``):
clips that share a track are all positives for it. ``label`` is an optional category
(mood, genre). ``split`` is an optional name (train/val/test). ``start``/``end`` bound the
clip inside its files in seconds (default: 0 and the end of the media). Other keys are
kept in :attr:`ClipRecord.extra`.

A folder is accepted too: its ``manifest.jsonl`` when it has one, otherwise every video
under it (each paired with its own soundtrack, id = path without extension), or for the
music role every audio file and video (see :mod:`crossmodal.data.formats`).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossmodal.data.errors import ManifestError
from crossmodal.fileio import atomic_path

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
# Said when a clip whose music is its video's soundtrack has none.
NO_SOUNDTRACK = (
    "no audio stream (the manifest's audio is null, so the video's own soundtrack is its music)"
)
KNOWN_KEYS = ("id", "video", "audio", "track_id", "label", "split", "start", "end")
# Set to a folder to refuse manifest paths outside it (servers, shared set-ups).
MEDIA_ROOT_ENV = "CROSSMODAL_MEDIA_ROOT"
# Times beyond a year are surely a mistake (and beyond 2**53 lose integer precision).
MAX_SECONDS = 3.2e7


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a manifest, with paths resolved against the manifest's folder."""

    id: str
    video: Path | None
    audio: Path | None = None
    track_id: str = ""
    label: str | None = None
    split: str | None = None
    start: float = 0.0
    end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.track_id:
            object.__setattr__(self, "track_id", self.id)

    @property
    def music(self) -> Path:
        """The file the music comes from: ``audio`` when set, else the video itself."""
        music = self.audio if self.audio is not None else self.video
        assert music is not None  # parse_record refuses rows with neither
        return music

    def to_json(self, root: Path) -> dict[str, Any]:
        """The manifest line, with paths relative to ``root`` where they lie under it."""

        def rel(p: Path | None) -> str | None:
            if p is None:
                return None
            try:
                return Path(os.path.relpath(p, root)).as_posix() if _is_under(p, root) else str(p)
            except ValueError:  # another drive on Windows
                return str(p)

        line: dict[str, Any] = {
            "id": self.id,
            "video": rel(self.video),
            "audio": rel(self.audio),
            "track_id": self.track_id,
            "label": self.label,
            "split": self.split,
            "start": self.start,
            "end": self.end,
        }
        line.update(self.extra)
        return line


def _is_under(path: Path, root: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return False
    return True


def _string(value: Any, key: str, where: str, *, optional: bool) -> str | None:
    if value is None:
        if optional:
            return None
        raise ManifestError(f"{where}: '{key}' is required")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ManifestError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
    text = str(value) if isinstance(value, str) or abs(value) < 10**18 else ""
    if isinstance(value, int) and not text:
        raise ManifestError(f"{where}: '{key}' is an integer too large to be a name; quote it")
    if not text:
        raise ManifestError(f"{where}: '{key}' is empty")
    if "\x00" in text:
        raise ManifestError(f"{where}: '{key}' contains a NUL character; remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestError(
            f"{where}: '{key}' contains an unpaired UTF-16 surrogate escape; fix the value"
        ) from None
    return text


def _seconds(value: Any, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(
            f"{where}: '{key}' must be a finite number of seconds, got {type(value).__name__}"
        )
    try:
        seconds = float(value)  # an int too large for a float overflows here
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        shown = f"{value!r}" if isinstance(value, float) else "a huge integer"
        raise ManifestError(
            f"{where}: '{key}' must be a finite number of seconds up to {MAX_SECONDS:.0e}, "
            f"got {shown}"
        )
    if seconds < 0:
        raise ManifestError(f"{where}: '{key}' must be >= 0, got {seconds}")
    return seconds


def parse_record(line: dict[str, Any], root: Path, where: str = "manifest") -> ClipRecord:
    """Validate one manifest object and resolve its paths against ``root``."""
    if not isinstance(line, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(line).__name__}")
    clip_id = _string(line.get("id"), "id", where, optional=False)
    video = _string(line.get("video"), "video", where, optional=True)
    audio = _string(line.get("audio"), "audio", where, optional=True)
    if video is None and audio is None:
        raise ManifestError(f"{where}: 'video' or 'audio' is required (a row names a file)")
    track = _string(line.get("track_id"), "track_id", where, optional=True)
    label = _string(line.get("label"), "label", where, optional=True)
    split = _string(line.get("split"), "split", where, optional=True)
    start = _seconds(line.get("start"), "start", where) or 0.0
    end = _seconds(line.get("end"), "end", where)
    if end is not None and end <= start:
        raise ManifestError(f"{where}: 'end' ({end}) must be greater than 'start' ({start})")
    extra = {k: v for k, v in line.items() if k not in KNOWN_KEYS}
    return ClipRecord(
        id=clip_id,  # type: ignore[arg-type]
        video=None if video is None else root / video,
        audio=None if audio is None else root / audio,
        track_id=track or "",
        label=label,
        split=split,
        start=start,
        end=end,
        extra=extra,
    )


def read_manifest(
    path: str | os.PathLike[str],
    role: str = "pairs",
    *,
    media_root: str | os.PathLike[str] | None = None,
) -> list[ClipRecord]:
    """Records of a JSONL manifest, or of a folder (see the module docstring).

    ``role`` only matters for a folder without a manifest: "pairs" or "video" list its
    videos (each paired with its own soundtrack), "music" its audio files and videos as
    music-only rows. What a scan leaves out is logged as a warning with the reason.

    Raises :class:`ManifestError` naming the file and line for malformed JSON, missing or
    mistyped keys, ``end <= start``, duplicate ids, or an empty manifest.

    Paths in a manifest may point anywhere the process can read (``../``, absolute
    paths): fine for a local tool. Servers and shared set-ups confine them with
    ``media_root`` (default: the ``CROSSMODAL_MEDIA_ROOT`` environment variable): every
    video/audio path, symlinks resolved, must then lie under that folder.
    """
    path = Path(path)
    confine = media_root if media_root is not None else os.environ.get(MEDIA_ROOT_ENV) or None
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            path = path / MANIFEST_NAME
        else:
            return _confined(_scan_folder(path, role), confine, str(path))
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file or folder")
    root = path.parent
    records: list[ClipRecord] = []
    seen: dict[str, int] = {}
    for number, text in _lines(path):
        if not text.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{where}: invalid JSON ({err.msg})") from err
        except ValueError as err:  # e.g. an integer beyond Python's 4300-digit limit
            raise ManifestError(f"{where}: invalid value ({err})") from err
        except RecursionError:
            raise ManifestError(f"{where}: JSON nested too deeply") from None
        record = parse_record(obj, root, where)
        if record.id in seen:
            raise ManifestError(
                f"{where}: duplicate id {record.id!r} (first on line {seen[record.id]})"
            )
        seen[record.id] = number
        records.append(record)
    if not records:
        raise ManifestError(f"{path}: the manifest lists no clips")
    return _confined(records, confine, str(path))


def _confined(
    records: list[ClipRecord], media_root: str | os.PathLike[str] | None, where: str
) -> list[ClipRecord]:
    """``records`` if every media path resolves inside ``media_root`` (None: no limit)."""
    if media_root is None:
        return records
    root = os.path.realpath(media_root)
    for record in records:
        for key, value in (("video", record.video), ("audio", record.audio)):
            if value is None:
                continue
            real = os.path.realpath(value)
            if os.path.commonpath([root, real]) != root:
                raise ManifestError(
                    f"{where}: clip {record.id!r}: '{key}' {value} is outside the media root "
                    f"{root} ({MEDIA_ROOT_ENV}); move the file under it or fix the manifest"
                )
    return records


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(number, text) of each line of a UTF-8 manifest (a UTF-8 BOM is allowed)."""
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 2 and b"\x00" in head[:2]):
        raise ManifestError(f"{path}: the manifest looks like UTF-16 text; save it as UTF-8")
    with path.open(encoding="utf-8-sig") as f:
        number = 0
        try:
            for number, text in enumerate(f, start=1):
                if "\x00" in text:
                    raise ManifestError(
                        f"{path}:{number}: NUL bytes: this is not a text manifest (JSON lines)"
                    )
                yield number, text
        except UnicodeDecodeError:
            raise ManifestError(
                f"{path}: not UTF-8 text (near line {number + 1}); a manifest is JSON lines in UTF-8 "
                "(is this the right file?)"
            ) from None


def _scan_folder(folder: Path, role: str) -> list[ClipRecord]:
    from crossmodal.data.formats import scan_folder

    scan = scan_folder(folder, "music" if role == "music" else "video")
    if scan.skipped:
        log.warning("%s: %s", folder, scan.describe_skipped())
    if not scan.files:
        kinds = "audio or video files" if role == "music" else "videos"
        raise ManifestError(f"{folder}: no {MANIFEST_NAME} and no {kinds} in it")

    def clip_id(p: Path) -> str:
        return p.relative_to(folder).with_suffix("").as_posix()

    if role == "music":  # a music library: each file is its own music, no video needed
        return [ClipRecord(id=clip_id(p), video=None, audio=p) for p in scan.files]
    return [ClipRecord(id=clip_id(p), video=p) for p in scan.files]


def write_manifest(records: Iterable[ClipRecord], path: str | os.PathLike[str]) -> Path:
    """Write ``records`` as JSONL (paths relative to the manifest's folder), atomically."""
    path = Path(path)
    root = path.parent
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_json(root), ensure_ascii=False) + "\n")
    return path


def select_split(records: list[ClipRecord], split: str | None) -> list[ClipRecord]:
    """Records of one split (all of them for None); an error names the splits present."""
    if split is None:
        return list(records)
    chosen = [r for r in records if r.split == split]
    if not chosen:
        present = sorted({str(r.split) for r in records})
        raise ManifestError(f"no clips in split {split!r} (splits present: {', '.join(present)})")
    return chosen
