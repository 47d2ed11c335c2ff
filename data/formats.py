"""What the decoder chain reads, and how far a decoded stream may fall short of its header.

One list of extensions serves every folder scan (``index --music/--videos``, ``data
check FOLDER``) and names what the decoders are expected to read: PyAV (ffmpeg) decodes
all of them, decord only some of the video ones (see :mod:`crossmodal.data.video`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Containers that carry pictures (and usually a soundtrack). ``.ogg`` is here and in the
# audio list: the same container holds Theora video or Vorbis/Opus music.
VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ogv", ".ogg", ".mpg", ".mpeg",
    ".m2v", ".ts", ".m2ts", ".mts", ".flv", ".wmv", ".asf", ".3gp", ".3g2", ".mxf", ".vob",
    ".dv", ".nut",
)  # fmt: skip
# Files that are music only.
AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".mp2", ".m4a", ".m4b", ".aac",
    ".aif", ".aiff", ".aifc", ".ac3", ".eac3", ".dts", ".mka", ".wma", ".caf", ".au",
    ".w64", ".wv", ".ape", ".tta", ".amr", ".dsf",
)  # fmt: skip
# Files whose music the indexer can read: audio files and the soundtracks of videos.
MUSIC_EXTENSIONS = tuple(dict.fromkeys(AUDIO_EXTENSIONS + VIDEO_EXTENSIONS))

# A decoded stream may end this much before the duration its header declares and still
# be whole: max(1 s, 5 % of the declared duration). Real files do this (an audio stream
# that stops before the container's end, a last frame the muxer rounded away).
SHORTFALL_SECONDS = 1.0
SHORTFALL_FRACTION = 0.05


def shortfall_tolerance(declared: float | None) -> float:
    """Seconds a stream may decode short of ``declared`` before it counts as truncated."""
    return max(SHORTFALL_SECONDS, SHORTFALL_FRACTION * (declared or 0.0))


@dataclass
class FolderScan:
    """Files of a folder scan, and what was left out: ``skipped`` maps a reason to the
    files it applies to."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, list[Path]] = field(default_factory=dict)

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.setdefault(reason, []).append(path)

    def describe_skipped(self) -> str:
        """One line per reason: how many files, and their extensions (empty when none)."""
        lines = []
        for reason, paths in self.skipped.items():
            kinds = Counter(p.suffix.lower() or "(no extension)" for p in paths)
            listed = ", ".join(f"{ext} ({n})" for ext, n in sorted(kinds.items()))
            lines.append(f"skipped {len(paths)} file(s), {reason}: {listed}")
        return "\n".join(lines)


def scan_folder(folder: str | os.PathLike[str], role: str) -> FolderScan:
    """Media files under ``folder`` (recursive, sorted) for ``role`` "music" (audio
    files and videos, whose soundtrack is the music) or "video".

    Files with an extension outside the role's list are skipped with a reason; for
    "video", a container that may hold music only (``.ogg``) is probed and skipped when
    it has no video stream. Hidden files (names starting with ".") are ignored.
    """
    from crossmodal.data.errors import MediaError
    from crossmodal.data.media_info import probe

    if role not in ("music", "video"):
        raise ValueError(f"role must be 'music' or 'video', got {role!r}")
    extensions = MUSIC_EXTENSIONS if role == "music" else VIDEO_EXTENSIONS
    scan = FolderScan()
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        if suffix not in extensions:
            reason = (
                "music only, not a video"
                if role == "video" and suffix in AUDIO_EXTENSIONS
                else "not a media extension the decoders read"
            )
            scan.skip(path, reason)
            continue
        if role == "video" and suffix in AUDIO_EXTENSIONS:
            try:
                has_video = probe(path).has_video
            except MediaError:
                has_video = True  # unreadable: the indexer reports it with its reason
            if not has_video:
                scan.skip(path, "no video stream")
                continue
        scan.files.append(path)
    return scan
