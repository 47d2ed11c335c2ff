"""Decode video frames with decord, at the spec's size, at chosen times.

Frames are picked by time, not index: the frame shown at time t is the last frame whose
timestamp is <= t (decord reads every frame's timestamp from the container index), so
variable-frame-rate files land on the right pictures. decord scales frames to the spec's
width × height while decoding (aspect ratio is not kept), so full-size frames are never
materialised.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from crossmodal.data.decoders import decoder_errors, decord_module, first_line
from crossmodal.data.errors import CorruptMediaError, NoStreamError, TooShortError
from crossmodal.data.media_info import probe
from crossmodal.data.specs import VideoSpec

# A sample time may pass the last frame's end by this much (float rounding in containers).
TIME_TOLERANCE = 1e-3


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
    files fail with a specific reason before decord sees them), then reads the container
    index (no frames). ``num_threads`` is decord's decoding threads (1 suits DataLoader
    workers; 0 lets decord choose).
    """

    def __init__(self, path: str | os.PathLike[str], spec: VideoSpec, num_threads: int = 1) -> None:
        decord = decord_module()
        self.info = probe(path)
        self.path = Path(path)
        self.spec = spec
        self.num_threads = num_threads
        if not self.info.has_video:
            raise NoStreamError(self.path, "no video stream")
        try:
            self.reader = decord.VideoReader(
                str(self.path),
                ctx=decord.cpu(0),
                width=spec.width,
                height=spec.height,
                num_threads=num_threads,
            )
            n = len(self.reader)
            stamps = self.reader.get_frame_timestamp(np.arange(n)) if n else np.zeros((0, 2))
        except decoder_errors(decord) as err:
            raise CorruptMediaError(
                self.path, f"video decoder failed (truncated or corrupt file?): {first_line(err)}"
            ) from err
        if n == 0:
            raise NoStreamError(self.path, "no video frames")
        self.starts = np.asarray(stamps[:, 0], dtype=np.float64)
        self.end = float(stamps[-1, 1])

    def __len__(self) -> int:
        return len(self.starts)

    def indices_at(self, times: np.ndarray) -> np.ndarray:
        """Index of the frame on screen at each time; :class:`TooShortError` past the end."""
        times = np.asarray(times, dtype=np.float64)
        if len(times) and times.max() > self.end + TIME_TOLERANCE:
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
        decord = decord_module()
        try:
            batch = self.reader.get_batch(unique.tolist()).asnumpy()
        except decoder_errors(decord) as err:
            if "size must exactly match" not in str(err):
                raise CorruptMediaError(
                    self.path, f"video decoder failed: {first_line(err)}"
                ) from err
            batch = self._unpadded_frames(unique.tolist())
        expected = (len(unique), self.spec.height, self.spec.width, 3)
        if batch.shape != expected:
            raise CorruptMediaError(
                self.path, f"decoder returned frames of shape {batch.shape}, expected {expected}"
            )
        return batch[inverse]

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

    def frames_at(self, times: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) frames on screen at ``times`` (seconds)."""
        return self.frames(self.indices_at(times))


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
    if end > video.end + TIME_TOLERANCE:
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
