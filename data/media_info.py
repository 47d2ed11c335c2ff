"""Probe a media file's streams from its header, without decoding it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from crossmodal.data.errors import CorruptMediaError, MissingMediaError


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds, read from its container header (PyAV), nothing decoded.

    ``duration`` is the container's (seconds, None if unknown). Video fields are None when
    ``has_video`` is False, audio fields when ``has_audio`` is False. ``fps`` is the average
    frame rate; ``video_duration``/``audio_duration`` are the streams' own (a soundtrack
    can be shorter than its video); ``frame_count`` is the header's count, or duration × fps when the header
    has none. ``variable_frame_rate`` is a hint: the stream's base rate differs from its
    average rate (decoding uses each frame's own timestamp either way).
    """

    path: str
    size_bytes: int
    format: str
    duration: float | None
    has_video: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    video_duration: float | None = None
    video_codec: str | None = None
    variable_frame_rate: bool = False
    has_audio: bool = False
    sample_rate: int | None = None
    channels: int | None = None
    audio_codec: str | None = None
    audio_duration: float | None = None


def check_file(path: str | os.PathLike[str]) -> Path:
    """The path, if it names a non-empty regular file; a :class:`MediaError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise MissingMediaError(path, "no such file")
    if not path.is_file():
        raise MissingMediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise CorruptMediaError(path, "empty file (0 bytes)")
    return path


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Streams, duration, rates and sizes of ``path`` from its header.

    Raises :class:`MissingMediaError` (no file), :class:`CorruptMediaError` (empty, not a
    media file, unreadable header) with the reason; never decodes frames. Results are
    memoised per (path, size, mtime), so asking again about an unchanged file is free.
    """
    path = check_file(path)
    stat = path.stat()
    return _probe(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4096)
def _probe(name: str, size: int, mtime_ns: int) -> MediaInfo:
    import av

    path = Path(name)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as err:
        raise CorruptMediaError(path, f"not a readable media file ({_ffmpeg_reason(err)})") from err
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptMediaError(path, f"cannot open: {err}") from err
    with container:
        duration = container.duration / 1e6 if container.duration else None
        fields: dict[str, object] = {}
        if container.streams.video:
            v = container.streams.video[0]
            cc = v.codec_context
            fps = float(v.average_rate) if v.average_rate else None
            base = float(v.base_rate) if v.base_rate else None
            v_duration = float(v.duration * v.time_base) if v.duration and v.time_base else None
            frames = int(v.frames) or None
            if frames is None and fps and (v_duration or duration):
                frames = round((v_duration or duration) * fps)
            fields.update(
                width=cc.width or None,
                height=cc.height or None,
                fps=fps,
                frame_count=frames,
                video_duration=v_duration or duration,
                video_codec=cc.name,
                variable_frame_rate=bool(fps and base and abs(base - fps) > 0.01 * fps),
            )
        if container.streams.audio:
            a = container.streams.audio[0]
            cc = a.codec_context
            fields.update(
                sample_rate=cc.sample_rate or None,
                channels=cc.channels or None,
                audio_codec=cc.name,
                audio_duration=float(a.duration * a.time_base)
                if a.duration and a.time_base
                else duration,
            )
        return MediaInfo(
            path=str(path),
            size_bytes=size,
            format=container.format.name,
            duration=duration,
            has_video=bool(container.streams.video),
            has_audio=bool(container.streams.audio),
            **fields,  # type: ignore[arg-type]
        )


def _ffmpeg_reason(err: Exception) -> str:
    strerror = getattr(err, "strerror", None)
    return f"ffmpeg: {strerror}" if strerror else f"ffmpeg: {err}"
