"""Decode video frames at the spec's size, at chosen times: decord first, PyAV when
decord cannot read or measure the file (see :class:`VideoFile`).

Frames are picked by time, not index: the frame shown at time t is the last frame whose
timestamp is <= t (decord reads every frame's timestamp from the container index), so
variable-frame-rate files land on the right pictures. decord scales frames to the spec's
width × height while decoding (aspect ratio is not kept), so full-size frames are never
materialised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossmodal.data.decoders import decoder_errors, decord_module, first_line
from crossmodal.data.errors import CorruptMediaError, NoStreamError, TooShortError
from crossmodal.data.formats import shortfall_tolerance
from crossmodal.data.media_info import probe
from crossmodal.data.specs import VideoSpec
from crossmodal.data.windows import WindowBatch, file_windows

# Containers whose frames decord reads but mis-times, so PyAV decodes them: in MPEG
# program streams (.mpg) decord reports start times of -1e14 s, and in MPEG transport
# streams (.ts) it hands frame i + 1 for frame i (measured on files written by PyAV).
DECORD_UNRELIABLE_FORMATS = ("mpeg", "mpegts")
# A sample time may pass the last frame's end by this much (float rounding in containers).
TIME_TOLERANCE = 1e-3

log = logging.getLogger(__name__)


def window_frame_times(spec: VideoSpec, start: float, window: float) -> np.ndarray:
    """Times (s) of the ``spec.num_frames`` frames of the window [start, start + window).

    ``spec.fps`` set: ``start + i / fps``. ``spec.fps`` None: the centres of
    ``num_frames`` equal bins of the window, ``start + (i + 0.5) · window / num_frames``.
    """
    i = np.arange(spec.num_frames, dtype=np.float64)
    if spec.fps:
        return start + i / spec.fps
    return start + (i + 0.5) * window / spec.num_frames


class VideoFile:
    """An open video at the spec's size: frame timestamps plus decoding at given times.

    Construction probes the file with PyAV first (so empty, non-media and stream-less
    files fail with a specific reason before a decoder sees them), then opens the first
    decoder of the chain that can read the file: decord (reads the container index, no
    frames), else PyAV (one decoding pass for the timestamps; used for what decord
    cannot open or measure, such as Theora or VP8 in Ogg, and for the containers of
    ``DECORD_UNRELIABLE_FORMATS``). :attr:`decoder` names the one in use.
    ``num_threads`` is the decoder's threads (1 suits DataLoader workers; 0: its choice).

    The decoded frames are the truth: :attr:`end` is the end of the last decoded frame.
    A time past it by up to :func:`~crossmodal.data.formats.shortfall_tolerance` of the
    declared duration shows the last frame (a stream that stops a little before its
    header says); further is :class:`TooShortError`.
    """

    def __init__(self, path: str | os.PathLike[str], spec: VideoSpec, num_threads: int = 1) -> None:
        self.info = probe(path)
        self.path = Path(path)
        self.spec = spec
        self.num_threads = num_threads
        if not self.info.has_video:
            raise NoStreamError(self.path, "no video stream")
        self.reader: DecordFrames | PyAVFrames
        if self.info.format in DECORD_UNRELIABLE_FORMATS:
            self.reader = PyAVFrames(self.path, spec, num_threads)
        else:
            try:
                self.reader = DecordFrames(self.path, spec, num_threads)
            except CorruptMediaError as err:
                log.debug("%s: decord cannot read it (%s); trying PyAV", self.path, err.reason)
                self.reader = PyAVFrames(self.path, spec, num_threads)
        self.decoder = self.reader.name
        log.debug("%s: video frames decoded by %s", self.path, self.decoder)
        if len(self.reader.starts) == 0:
            raise NoStreamError(self.path, "no video frames")
        self.starts = self.reader.starts
        self.end = self.reader.end
        self.tolerance = max(TIME_TOLERANCE, shortfall_tolerance(self.info.video_duration))

    def __len__(self) -> int:
        return len(self.starts)

    def indices_at(self, times: np.ndarray, *, hold_last: bool = False) -> np.ndarray:
        """Index of the frame on screen at each time; past the end (beyond the
        tolerance) :class:`TooShortError`, or the last frame when ``hold_last``."""
        times = np.asarray(times, dtype=np.float64)
        if not hold_last and len(times) and times.max() > self.end + self.tolerance:
            raise TooShortError(
                self.path,
                f"video ends at {self.end:.3f} s, before the requested time {times.max():.3f} s",
            )
        idx = np.searchsorted(self.starts, times + 1e-6, side="right") - 1
        return np.clip(idx, 0, len(self.starts) - 1)

    def frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB frames at these indices (repeats allowed)."""
        indices = np.asarray(indices, dtype=np.int64)
        unique, inverse = np.unique(indices, return_inverse=True)
        batch = self.reader.frames(unique.tolist())
        expected = (len(unique), self.spec.height, self.spec.width, 3)
        if batch.shape != expected:
            raise CorruptMediaError(
                self.path, f"decoder returned frames of shape {batch.shape}, expected {expected}"
            )
        return batch[inverse]

    def frames_at(self, times: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) frames on screen at ``times`` (seconds)."""
        return self.frames(self.indices_at(times))


class DecordFrames:
    """decord's reader: frame timestamps from the container index, frames scaled by
    decord while decoding. Raises :class:`CorruptMediaError` when decord cannot open or
    measure the file."""

    name = "decord"

    def __init__(self, path: Path, spec: VideoSpec, num_threads: int) -> None:
        decord = decord_module()
        self.path, self.spec = path, spec
        try:
            self.reader = decord.VideoReader(
                str(path),
                ctx=decord.cpu(0),
                width=spec.width,
                height=spec.height,
                num_threads=num_threads,
            )
            n = len(self.reader)
            stamps = self.reader.get_frame_timestamp(np.arange(n)) if n else np.zeros((0, 2))
        except decoder_errors(decord) as err:
            raise CorruptMediaError(path, f"video decoder failed: {first_line(err)}") from err
        self.starts = np.asarray(stamps[:, 0], dtype=np.float64)
        self.end = float(stamps[-1, 1]) if n else 0.0
        if n and not (
            np.isfinite(self.starts).all()
            and self.starts.min() > -1.0
            and (np.diff(self.starts) >= 0).all()
            and self.end > self.starts[-1]
        ):
            # Seen on MPEG program streams: start times of -1e14 s. Measured, not read.
            raise CorruptMediaError(path, "decord cannot measure the frame timestamps")

    def frames(self, indices: list[int]) -> np.ndarray:
        decord = decord_module()
        try:
            return self.reader.get_batch(indices).asnumpy()
        except decoder_errors(decord) as err:
            if "size must exactly match" not in str(err):
                raise CorruptMediaError(
                    self.path, f"video decoder failed: {first_line(err)}"
                ) from err
            return self._unpadded_frames(indices)

    def _unpadded_frames(self, indices: list[int]) -> np.ndarray:
        # decord 0.6 pads the rows of frames at some widths (seen: 16, 24 and 48 px) to an
        # aligned stride and then refuses to copy a batch of them out; read them one by one
        # and drop each row's padding.
        decord = decord_module()
        height, width = self.spec.height, self.spec.width
        out = np.empty((len(indices), height, width, 3), dtype=np.uint8)
        try:
            for k, index in enumerate(indices):
                raw = self.reader[index].asnumpy().reshape(-1)
                stride = raw.size // height
                if raw.size % height or stride < width * 3:
                    raise CorruptMediaError(
                        self.path, f"decoder returned a {raw.size}-byte frame for {width}x{height}"
                    )
                out[k] = raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3)
        except decoder_errors(decord) as err:
            raise CorruptMediaError(self.path, f"video decoder failed: {first_line(err)}") from err
        return out


class PyAVFrames:
    """PyAV's reader, for files decord cannot read or measure: one decoding pass gives
    every frame's timestamp (the decoded frames are the truth, whatever the header says);
    frames are then decoded from the keyframe before the first one asked for, and scaled
    to the spec's size with ffmpeg's scaler. Raises :class:`CorruptMediaError` when the
    stream cannot be decoded."""

    name = "pyav"

    def __init__(self, path: Path, spec: VideoSpec, num_threads: int) -> None:
        self.path, self.spec, self.num_threads = path, spec, num_threads
        starts: list[float] = []
        self.pts: dict[int, int] = {}  # frame pts -> index, to find frames after a seek
        durations: list[float] = []
        with self._open() as (container, stream):
            self.origin = (container.start_time or 0) / 1e6
            for frame in self._decode(container, stream):
                if frame.pts is not None:
                    self.pts.setdefault(frame.pts, len(starts))
                starts.append(np.nan if frame.time is None else frame.time - self.origin)
                if frame.duration and frame.time_base:
                    durations.append(float(frame.duration * frame.time_base))
            rate = float(stream.average_rate) if stream.average_rate else 0.0
        self.starts = np.asarray(starts, dtype=np.float64)
        if (
            len(starts)
            and rate
            and (np.isnan(self.starts).any() or len(np.unique(self.starts)) < len(starts))
        ):
            # Frames without their own time (seen in MPEG program streams): a constant-rate
            # grid from the first known time, and frames found by counting, not by pts.
            first = float(np.nanmin(self.starts)) if not np.isnan(self.starts).all() else 0.0
            self.starts = first + np.arange(len(starts)) / rate
            self.pts = {}
        # Frames are shown in time order whatever order the decoder returned them in.
        self.order = np.argsort(self.starts, kind="stable")
        self.starts = self.starts[self.order]
        last = durations[-1] if durations else (1 / rate if rate else 0.0)
        if not last and len(starts) > 1:
            last = float(self.starts[-1] - self.starts[-2])
        self.end = float(self.starts[-1] + last) if len(starts) else 0.0
        # Seeking needs a unique pts per frame; without it, frames are found by counting.
        self.seekable = len(self.pts) == len(starts)

    @contextmanager
    def _open(self) -> Iterator[tuple[Any, Any]]:
        import av

        try:
            with av.open(str(self.path), metadata_errors="ignore") as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                stream.codec_context.thread_count = self.num_threads
                yield container, stream
        except av.error.FFmpegError as err:
            raise CorruptMediaError(self.path, f"video decoder failed: {first_line(err)}") from err

    @staticmethod
    def _decode(container: Any, stream: Any) -> Iterator[Any]:
        yield from container.decode(stream)

    def frames(self, indices: list[int]) -> np.ndarray:
        """Frames at these indices into :attr:`starts` (time order), ascending."""
        wanted = {int(self.order[i]): k for k, i in enumerate(indices)}  # decode index -> row
        out = np.empty((len(indices), self.spec.height, self.spec.width, 3), dtype=np.uint8)
        found = 0
        with self._open() as (container, stream):
            first_time = float(self.starts[min(indices)]) + self.origin
            if self.seekable and stream.time_base and first_time > 0:
                container.seek(int(first_time / stream.time_base), stream=stream, backward=True)
            counter = 0
            for frame in self._decode(container, stream):
                index = self.pts[frame.pts] if self.seekable else counter
                counter += 1
                row = wanted.get(index)
                if row is None:
                    continue
                image = frame.reformat(
                    width=self.spec.width, height=self.spec.height, format="rgb24"
                )
                out[row] = image.to_ndarray()
                found += 1
                if found == len(wanted):
                    break
        if found < len(wanted):
            raise CorruptMediaError(
                self.path, f"video decoder gave {found} of the {len(wanted)} frames asked for"
            )
        return out


def normalize_frames(frames: np.ndarray | torch.Tensor, spec: VideoSpec) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) → float32 (..., 3, T, H, W), ``(x / 255 - mean) / std``.

    The bytes are moved channel-first before converting (a uint8 copy is four times
    smaller than a float one), then one in-place multiply-add per channel.
    """
    x = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if x.dtype != np.uint8:
        raise TypeError(f"frames must be uint8, got {x.dtype}")
    out = np.ascontiguousarray(np.moveaxis(x, -1, -4)).astype(np.float32)
    scale, shift = _normalisation(spec.mean, spec.std)
    out *= scale
    out += shift
    return torch.from_numpy(out)


@lru_cache(maxsize=8)
def _normalisation(
    mean: tuple[float, ...], std: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    scale = np.array([1.0 / (255.0 * s) for s in std], dtype=np.float32).reshape(3, 1, 1, 1)
    shift = np.array([-m / s for m, s in zip(mean, std, strict=True)], dtype=np.float32).reshape(
        3, 1, 1, 1
    )
    return scale, shift


def load_video_windows(
    path: str | os.PathLike[str],
    spec: VideoSpec,
    window_starts: Sequence[float] | np.ndarray,
    window_seconds: float,
    *,
    normalize: bool = True,
    num_threads: int = 1,
) -> torch.Tensor:
    """Frames of several windows of one file, decoded in one pass.

    Returns float (N, 3, T, H, W) normalised per ``spec`` (``normalize=True``) or uint8
    (N, T, H, W, 3). Raises :class:`TooShortError` if a window passes the video's end.
    """
    video = VideoFile(path, spec, num_threads=num_threads)
    times = np.stack([window_frame_times(spec, float(s), window_seconds) for s in window_starts])
    frames = video.frames_at(times.reshape(-1)).reshape(
        len(times), spec.num_frames, spec.height, spec.width, 3
    )
    return normalize_frames(frames, spec) if normalize else torch.from_numpy(frames)


def decode_segment(
    path: str | os.PathLike[str],
    spec: VideoSpec,
    start: float,
    end: float | None,
    num_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Every frame on screen during [start, end) at the spec's size (what the cache keeps).

    Returns (frames uint8 (N, H, W, 3), frame start times (N,)); the first frame is the
    one on screen at ``start``.
    """
    video = VideoFile(path, spec, num_threads=num_threads)
    end = video.end if end is None else end
    if end > video.end + video.tolerance:
        raise TooShortError(
            video.path, f"video ends at {video.end:.3f} s, before the clip's end {end:.3f} s"
        )
    first = int(video.indices_at(np.array([start]))[0])
    last = int(np.searchsorted(video.starts, end - 1e-6, side="left"))
    indices = np.arange(first, max(first + 1, last))
    return video.frames(indices), video.starts[indices]


def frames_from_segment(
    frames: np.ndarray, frame_starts: np.ndarray, times: np.ndarray, path: str = "<segment>"
) -> np.ndarray:
    """Pick the frames on screen at ``times`` from a decoded segment (same rule as
    :meth:`VideoFile.indices_at`, so cached and direct decoding agree)."""
    idx = np.searchsorted(frame_starts, np.asarray(times) + 1e-6, side="right") - 1
    if len(idx) and idx.min() < 0:
        raise TooShortError(path, "requested time before the cached segment")
    return frames[np.clip(idx, 0, len(frame_starts) - 1)]


def video_window_batches(
    path: str | os.PathLike[str],
    spec: VideoSpec,
    window: float,
    hop: float,
    batch_size: int,
    *,
    min_seconds: float | None = None,
    num_threads: int = 1,
) -> Iterator[WindowBatch]:
    """Every ``window``-second window of a video, ``hop`` apart, as normalised frames
    (float (N, 3, T, H, W)) in batches of ``batch_size`` windows: memory holds one batch,
    whatever the video's length. The placement is
    :func:`~crossmodal.data.windows.file_windows` of the *decoded* frames [0, end].

    A video shorter than one window gives one window that holds its last frame to the
    end, when it lasts at least ``min_seconds`` (None: never), else :class:`TooShortError`.
    """
    video = VideoFile(path, spec, num_threads=num_threads)
    starts = file_windows(video.end, window, hop)
    padded = False
    if len(starts) == 0:
        if min_seconds is None or video.end + 1e-6 < min_seconds:
            need = f"{window:g} s window" if min_seconds is None else f"{min_seconds:g} s minimum"
            raise TooShortError(
                video.path, f"video lasts {video.end:.3f} s, shorter than the {need}"
            )
        starts, padded = np.zeros(1), True
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        times = np.stack([window_frame_times(spec, float(s), window) for s in chunk])
        frames = video.frames(video.indices_at(times.reshape(-1), hold_last=padded))
        frames = frames.reshape(len(chunk), spec.num_frames, spec.height, spec.width, 3)
        last = i + batch_size >= len(starts)
        yield WindowBatch(
            chunk, normalize_frames(frames, spec), padded, video.end if last else None
        )
