"""Decode music to mono at the spec's sample rate by streaming, and cut it into windows.

Every audio file and every soundtrack goes through one decoder: PyAV (ffmpeg). Packets
are decoded one at a time and each decoded frame goes straight through ffmpeg's
resampler (``av.AudioResampler``, libswresample) to float32 at the target rate; mono is
the mean of the resampled channels. Nothing is ever held at the file's native rate, so a
stream costs memory for one block, not for the file (:func:`stream_audio`).
:func:`load_audio` gathers a range of the stream; :func:`audio_window_batches` cuts
fixed-size windows while the stream plays, for embedding whole files.

The decoded stream is the truth: its length is what the decoder gives, whatever the
header declares (see :func:`crossmodal.data.formats.shortfall_tolerance` for what
:mod:`crossmodal.data.check` reports).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from crossmodal.data.decoders import first_line
from crossmodal.data.errors import CorruptMediaError, NoStreamError, TooShortError
from crossmodal.data.media_info import check_file
from crossmodal.data.specs import AudioSpec
from crossmodal.data.windows import WindowBatch, file_windows

# Names the audio decoding in cache keys: cached music from another decoder is not reused.
AUDIO_DECODER = "pyav-swr"
# A window may pass the end of the decoded audio by this much; the gap is zero-filled
# (AAC and resampling round lengths by a few samples).
LENGTH_TOLERANCE = 0.01
# Seconds decoded before a seek target: the resampler needs a little context at the edge.
SEEK_MARGIN = 0.1
# Resampled samples gathered before they are handed on (about 0.5 s at 16 kHz).
BLOCK_SAMPLES = 8192

log = logging.getLogger(__name__)


class AudioStream:
    """Mono float32 blocks at ``sample_rate`` from ``start`` (s) to ``stop`` (or the end).

    Iterate it once: each block is the next run of samples; sample 0 of the first block
    is at :attr:`offset` (``start`` rounded down to the sample grid). After the iteration,
    :attr:`samples` is the count yielded and :attr:`end` the decoded end in seconds.
    Raises :class:`NoStreamError` (no audio stream) or :class:`CorruptMediaError`
    (undecodable bytes, NaN/Inf samples, nothing decodable).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        start: float = 0.0,
        stop: float | None = None,
    ) -> None:
        self.path = check_file(path)
        self.sample_rate = int(sample_rate)
        self.first = math.floor(max(0.0, start) * sample_rate + 1e-6)
        self.last = None if stop is None else math.ceil(stop * sample_rate - 1e-6)
        self.offset = self.first / sample_rate
        self.samples = 0

    @property
    def end(self) -> float:
        return self.offset + self.samples / self.sample_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        import av

        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as err:
            raise CorruptMediaError(self.path, f"not a readable media file ({err})") from err
        with container:
            if not container.streams.audio:
                raise NoStreamError(self.path, "no audio stream")
            try:
                yield from self._blocks(av, container, container.streams.audio[0])
            except av.error.FFmpegError as err:
                raise CorruptMediaError(
                    self.path, f"audio decoder failed: {first_line(err)}"
                ) from err
        if self.samples == 0 and self.first == 0:
            raise CorruptMediaError(self.path, "audio stream has no decodable samples")

    def _blocks(self, av: Any, container: Any, stream: Any) -> Iterator[np.ndarray]:
        sr = self.sample_rate
        # Times are relative to the container's start (what a player shows as 0:00), so a
        # soundtrack stays in step with its video and an MP3's encoder delay is not silence.
        origin = (container.start_time or 0) / 1e6
        seek_to = self.offset - SEEK_MARGIN
        if seek_to > 0 and stream.time_base:
            # Lands on a packet at or before the target; samples before it are dropped.
            target = int((seek_to + origin) / stream.time_base)
            container.seek(target, stream=stream, backward=True)
        resampler = None
        position = 0  # stream index (at ``sr``) of the first sample in ``pending``
        pending: list[np.ndarray] = []
        pending_len = 0
        for frame in container.decode(stream):
            if resampler is None:
                resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=sr)
                position = round(((frame.time or 0.0) - origin) * sr)
            for out in resampler.resample(frame):
                pending.append(out.to_ndarray())
                pending_len += out.samples
            # Hand on blocks of a few thousand samples: per-frame work costs more than decoding.
            if pending_len >= BLOCK_SAMPLES:
                yield from self._emit(pending, position)
                position += pending_len
                pending, pending_len = [], 0
                if self._done():
                    return
        if resampler is not None:
            for out in resampler.resample(None):
                pending.append(out.to_ndarray())
                pending_len += out.samples
        if pending:
            yield from self._emit(pending, position)

    def _done(self) -> bool:
        return self.last is not None and self.first + self.samples >= self.last

    def _emit(self, pending: list[np.ndarray], position: int) -> Iterator[np.ndarray]:
        """Yield the part of resampled frames (starting at stream index ``position``)
        that lies inside [first, last), as mono float32."""
        data = np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]
        mono = data.mean(axis=0, dtype=np.float32) if data.shape[0] > 1 else data[0]
        here = self.first + self.samples
        if position > here:
            # The stream starts after the requested time: the gap is silence on the timeline.
            stop = position if self.last is None else min(position, self.last)
            yield np.zeros(stop - here, dtype=np.float32)
            self.samples += stop - here
            here = stop
        skip = here - position
        take = len(mono) - skip if self.last is None else min(len(mono) - skip, self.last - here)
        if take > 0:
            block = mono[skip : skip + take]
            if not np.isfinite(block).all():
                raise CorruptMediaError(self.path, "decoded audio contains NaN or infinite samples")
            self.samples += take
            yield np.ascontiguousarray(block, dtype=np.float32)


def stream_audio(
    path: str | os.PathLike[str], sample_rate: int, start: float = 0.0, stop: float | None = None
) -> AudioStream:
    """An :class:`AudioStream` of ``path``: mono float32 blocks at ``sample_rate``."""
    return AudioStream(path, sample_rate, start, stop)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    start: float = 0.0,
    stop: float | None = None,
) -> tuple[np.ndarray, float]:
    """Mono float32 at ``sample_rate`` covering [start, stop), or less where the stream
    ends first. Returns (samples, offset): sample 0 is at ``offset`` seconds, ``start``
    rounded down to the sample grid. Only the range is decoded (the decoder seeks)."""
    stream = stream_audio(path, sample_rate, start, stop)
    blocks = list(stream)
    wave = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return wave, stream.offset


def cut_windows(
    wave: np.ndarray,
    sample_rate: int,
    offset: float,
    window_starts: Sequence[float] | np.ndarray,
    num_samples: int,
    path: str | os.PathLike[str] = "<audio>",
    tolerance: float = LENGTH_TOLERANCE,
) -> np.ndarray:
    """(N, num_samples) windows starting at ``window_starts`` (s) of audio whose sample 0
    is at ``offset``. A window passing the end by up to ``tolerance`` seconds is
    zero-filled; by more, :class:`TooShortError`."""
    out = np.zeros((len(window_starts), num_samples), dtype=np.float32)
    available = offset + len(wave) / sample_rate
    for k, start in enumerate(window_starts):
        first = round((float(start) - offset) * sample_rate)
        if first < 0:
            raise TooShortError(
                path, f"window at {start:.3f} s starts before the decoded audio ({offset:.3f} s)"
            )
        piece = wave[first : first + num_samples]
        if num_samples - len(piece) > tolerance * sample_rate:
            raise TooShortError(
                path,
                f"audio lasts {available:.3f} s, shorter than the window "
                f"[{float(start):.3f}, {float(start) + num_samples / sample_rate:.3f}] s",
            )
        out[k, : len(piece)] = piece
    return out


@lru_cache(maxsize=8)
def _logmel(spec: AudioSpec) -> torch.nn.Module:
    from crossmodal.data.logmel import LogMel

    return LogMel(spec)


def represent(windows: np.ndarray | torch.Tensor, spec: AudioSpec) -> torch.Tensor:
    """Waveforms (..., S) → what ``spec.representation`` asks for: the waveforms
    themselves, or log-mels (..., n_mels, frames)."""
    x = torch.as_tensor(windows, dtype=torch.float32)
    if spec.representation == "waveform":
        return x
    with torch.no_grad():
        return _logmel(spec)(x)


def load_audio_windows(
    path: str | os.PathLike[str],
    spec: AudioSpec,
    window_starts: Sequence[float] | np.ndarray,
) -> torch.Tensor:
    """Windows of ``spec.seconds`` from one file: float (N, S) waveforms or (N, n_mels,
    frames) log-mels per ``spec.representation``; one decode of the range they span."""
    if len(window_starts) == 0:
        raise ValueError("no window starts given")
    starts = np.asarray(window_starts, dtype=np.float64)
    wave, offset = load_audio(
        path, spec.sample_rate, float(starts.min()), float(starts.max()) + spec.seconds
    )
    windows = cut_windows(wave, spec.sample_rate, offset, starts, spec.num_samples, path)
    return represent(windows, spec)


def audio_window_batches(
    path: str | os.PathLike[str],
    spec: AudioSpec,
    hop: float,
    batch_size: int,
    *,
    min_seconds: float | None = None,
) -> Iterator[WindowBatch]:
    """Every ``spec.seconds`` window of a file, ``hop`` apart, in batches, cut while the
    file streams: memory holds one window plus one hop of samples and one batch, whatever
    the file's length. The window placement is :func:`~crossmodal.data.windows.file_windows`
    of the *decoded* stream [0, end]: the last window ends at the decoded end.

    A file shorter than one window gives one window padded with silence when it lasts at
    least ``min_seconds`` (None: never pad), else :class:`TooShortError`.
    """
    sr, width = spec.sample_rate, spec.num_samples
    stream = stream_audio(path, sr)
    hop_samples = hop * sr
    # One buffer of fixed size, refilled in place: buffers of varying sizes, allocated
    # and freed as the stream goes, let glibc's heap grow with the file's length.
    ring = _Ring(width + math.ceil(hop_samples) + 4 * BLOCK_SAMPLES)
    emitted: list[int] = []  # first sample of every window cut so far
    batch = np.zeros((batch_size, width), dtype=np.float32)
    batch_starts: list[int] = []

    for block in stream:
        ring.append(block)
        while True:
            first = round(len(emitted) * hop_samples)
            if first + width > ring.stop:
                break
            batch[len(batch_starts)] = ring.window(first, width)
            batch_starts.append(first)
            emitted.append(first)
            if len(batch_starts) == batch_size:
                yield _audio_batch(batch_starts, batch, spec)
                batch_starts = []
        # Keep only what later windows need: from the next start, or the last full window
        # (the tail window may end at the decoded end, before the next regular start).
        ring.drop_before(min(round(len(emitted) * hop_samples), ring.stop - width))
    total = stream.samples
    seconds = total / sr
    padded = False
    if not emitted:
        if total < width and (min_seconds is None or seconds + 1e-6 < min_seconds):
            need = (
                f"{spec.seconds:g} s window"
                if min_seconds is None
                else f"{min_seconds:g} s minimum"
            )
            raise TooShortError(
                stream.path, f"music lasts {seconds:.3f} s, shorter than the {need}"
            )
        batch[0] = ring.window(0, width)  # zero-filled past the end
        batch_starts.append(0)
        emitted.append(0)
        padded = total < width
    else:
        placed = file_windows(seconds, spec.seconds, hop)
        tail = round(float(placed[-1]) * sr) if len(placed) else 0
        if tail > emitted[-1]:  # the hops left a tail: one window ends at the decoded end
            batch[len(batch_starts)] = ring.window(tail, width)
            batch_starts.append(tail)
    if batch_starts:
        yield _audio_batch(batch_starts, batch, spec, padded, seconds)
    else:  # the windows filled whole batches: say where the stream ended
        yield WindowBatch(np.zeros(0), represent(np.zeros((0, width)), spec), False, seconds)


class _Ring:
    """The samples [start, stop) of a stream in one fixed buffer (grown only when a
    block would not fit)."""

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros(capacity, dtype=np.float32)
        self.start = self.stop = 0

    def append(self, block: np.ndarray) -> None:
        used = self.stop - self.start
        if used + len(block) > len(self.data):
            grown = np.zeros(used + len(block), dtype=np.float32)
            grown[:used] = self.data[:used]
            self.data = grown
        self.data[used : used + len(block)] = block
        self.stop += len(block)

    def window(self, first: int, width: int) -> np.ndarray:
        """Samples [first, first + width), zero-filled past ``stop``."""
        piece = self.data[first - self.start : min(first + width, self.stop) - self.start]
        if len(piece) == width:
            return piece
        out = np.zeros(width, dtype=np.float32)
        out[: len(piece)] = piece
        return out

    def drop_before(self, index: int) -> None:
        drop = min(index, self.stop) - self.start
        if drop <= 0:
            return
        used = self.stop - self.start
        self.data[: used - drop] = self.data[drop:used]  # in place: no new buffer
        self.start += drop


def _audio_batch(
    starts: list[int],
    batch: np.ndarray,
    spec: AudioSpec,
    padded: bool = False,
    end: float | None = None,
) -> WindowBatch:
    seconds = np.asarray(starts, dtype=np.float64) / spec.sample_rate
    # A copy for waveform specs (the batch buffer is refilled); log-mels are new tensors.
    inputs = represent(batch[: len(starts)].copy(), spec)
    return WindowBatch(seconds, inputs, padded, end)
