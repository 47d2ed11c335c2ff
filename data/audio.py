"""Decode music to mono at the spec's sample rate, and cut it into windows.

Sources: a standalone music file (wav/flac/ogg/mp3/aiff via soundfile; anything else, or
a file soundfile cannot read, as a container) or a video's soundtrack. Soundtracks are
decoded by decord's ``AudioReader`` with its mono downmix (``backend="decord"``, the
default), or by PyAV (``backend="pyav"``, about 3× faster here on short AAC clips).
decord 0.6 scrambles the samples of multi-channel output (``mono=False``), so
soundtracks with more than two channels always go through PyAV. Mono is the mean of the
channels. Resampling uses torchaudio's windowed-sinc resampler.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from crossmodal.data.decoders import decoder_errors, decord_module, first_line
from crossmodal.data.errors import CorruptMediaError, NoStreamError, TooShortError
from crossmodal.data.media_info import check_file, probe
from crossmodal.data.specs import AudioSpec

STANDALONE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
# A window may pass the end of the decoded audio by this much; the gap is zero-filled
# (AAC and resampling round lengths by a few samples).
LENGTH_TOLERANCE = 0.01
# A soundtrack decoding this much shorter than its header says is treated as truncated.
TRUNCATION_TOLERANCE = 0.1

log = logging.getLogger(__name__)


def _checked(path: Path, wave: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    if wave.size == 0:
        raise CorruptMediaError(path, "decoded audio is empty")
    if not np.isfinite(wave).all():
        raise CorruptMediaError(path, "decoded audio contains NaN or infinite samples")
    return np.ascontiguousarray(wave, dtype=np.float32), int(rate)


def _read_soundfile(path: Path, start: float, stop: float | None) -> tuple[np.ndarray, int]:
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        rate = f.samplerate
        first = max(0, math.floor(start * rate))
        last = f.frames if stop is None else min(f.frames, math.ceil(stop * rate))
        f.seek(first)
        data = f.read(max(0, last - first), dtype="float32", always_2d=True)
    return data.mean(axis=1), rate


def _read_decord(path: Path, channels: int, rate: int) -> tuple[np.ndarray, int]:
    decord = decord_module()
    try:
        # sample_rate=-1 keeps the stream's own rate; resampling is done with torchaudio.
        reader = decord.AudioReader(str(path), ctx=decord.cpu(0), sample_rate=-1, mono=True)
        wave = reader[:].asnumpy()[0]
    except decoder_errors(decord) as err:
        raise CorruptMediaError(path, f"audio decoder failed: {first_line(err)}") from err
    if channels == 2:
        # ffmpeg's stereo→mono matrix is (L + R) / √2; rescale to the mean (L + R) / 2.
        wave = wave * np.float32(1 / math.sqrt(2))
    if rate <= 0:
        raise CorruptMediaError(path, "audio stream declares no sample rate")
    return wave, rate


# Sample formats PyAV hands over as arrays we can scale directly: (scale to [-1, 1], planar).
_PYAV_FORMATS = {
    "fltp": (1.0, True),
    "flt": (1.0, False),
    "dblp": (1.0, True),
    "dbl": (1.0, False),
    "s16p": (1 / 32768, True),
    "s16": (1 / 32768, False),
    "s32p": (1 / 2**31, True),
    "s32": (1 / 2**31, False),
}


def _frame_mono(frame: object, resampler: object) -> list[np.ndarray]:
    """Mono float32 samples of one decoded PyAV frame (mean of its channels)."""
    name = frame.format.name  # type: ignore[attr-defined]
    if name not in _PYAV_FORMATS:  # rare formats (u8, ...): let ffmpeg convert them
        return [f.to_ndarray().mean(axis=0) for f in resampler.resample(frame)]  # type: ignore[attr-defined]
    scale, planar = _PYAV_FORMATS[name]
    data = frame.to_ndarray()  # type: ignore[attr-defined]
    channels = len(frame.layout.channels)  # type: ignore[attr-defined]
    samples = data if planar else data.reshape(-1, channels).T
    mono = samples.astype(np.float32).mean(axis=0)
    return [mono * np.float32(scale) if scale != 1.0 else mono]


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
            for frame in container.decode(stream):
                chunks.extend(_frame_mono(frame, resampler))
    except av.error.FFmpegError as err:
        raise CorruptMediaError(path, f"audio decoder failed: {first_line(err)}") from err
    if not chunks:
        raise CorruptMediaError(path, "audio stream has no decodable samples")
    return np.concatenate(chunks), rate


AudioBackend = Literal["decord", "pyav"]


def decode_audio(
    path: str | os.PathLike[str],
    start: float = 0.0,
    stop: float | None = None,
    backend: AudioBackend = "decord",
) -> tuple[np.ndarray, int, float]:
    """Mono float32 samples at the file's own rate covering at least [start, stop).

    Returns (samples, rate, offset): sample 0 is at ``offset`` seconds in the file
    (standalone files read just the range; soundtracks decode whole, with ``backend``).
    Raises
    :class:`NoStreamError` for a file without audio, :class:`CorruptMediaError` when
    decoding fails or yields NaN/Inf.
    """
    path = check_file(path)
    if path.suffix.lower() in STANDALONE_EXTENSIONS:
        import soundfile

        try:
            wave, rate = _read_soundfile(path, start, stop)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
            # Not a format libsndfile reads (e.g. AAC in .mp3 clothing): try it as a container.
            log.debug("%s: soundfile cannot read it (%s); decoding as a container", path, err)
        else:
            first = max(0, math.floor(start * rate))
            return (*_checked(path, wave, rate), first / rate)
    info = probe(path)
    if not info.has_audio:
        raise NoStreamError(path, "no audio stream")
    channels = info.channels or 1
    if backend not in ("decord", "pyav"):
        raise ValueError(f"audio backend must be 'decord' or 'pyav', got {backend!r}")
    if channels > 2 or backend == "pyav":
        wave, rate = _read_pyav(path)
    else:
        wave, rate = _read_decord(path, channels, info.sample_rate or 0)
    declared = info.audio_duration
    if declared and len(wave) / rate < declared - TRUNCATION_TOLERANCE:
        raise CorruptMediaError(
            path,
            f"audio decodes to {len(wave) / rate:.3f} s but the header declares "
            f"{declared:.3f} s (truncated file?)",
        )
    return (*_checked(path, wave, rate), 0.0)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample mono float32 ``wave`` from ``rate`` to ``target`` Hz (torchaudio sinc)."""
    if rate == target:
        return wave
    import torchaudio

    out = torchaudio.functional.resample(torch.from_numpy(wave), rate, target)
    return out.numpy()


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    start: float = 0.0,
    stop: float | None = None,
    backend: AudioBackend = "decord",
) -> tuple[np.ndarray, float]:
    """Mono float32 at ``sample_rate`` covering [start, stop) or more.

    Returns (samples, offset): sample 0 is at ``offset`` seconds, a multiple of
    1/``sample_rate``. A margin is read around standalone ranges so that resampling has
    context at the edges.
    """
    margin = 0.1
    wave, rate, offset = decode_audio(
        path, max(0.0, start - margin), None if stop is None else stop + margin
    )
    # Align sample 0 to the target rate's grid: drop the few native samples before it.
    aligned = math.ceil(offset * sample_rate - 1e-9) / sample_rate
    skip = round((aligned - offset) * rate)
    return resample(wave[skip:], rate, sample_rate), aligned


def cut_windows(
    wave: np.ndarray,
    sample_rate: int,
    offset: float,
    window_starts: Sequence[float] | np.ndarray,
    num_samples: int,
    path: str | os.PathLike[str] = "<audio>",
) -> np.ndarray:
    """(N, num_samples) windows starting at ``window_starts`` (s) of audio whose sample 0
    is at ``offset``. Raises :class:`TooShortError` when a window passes the end by more
    than ``LENGTH_TOLERANCE`` (a smaller shortfall is zero-filled)."""
    out = np.zeros((len(window_starts), num_samples), dtype=np.float32)
    available = offset + len(wave) / sample_rate
    for k, start in enumerate(window_starts):
        first = round((float(start) - offset) * sample_rate)
        if first < 0:
            raise TooShortError(
                path, f"window at {start:.3f} s starts before the decoded audio ({offset:.3f} s)"
            )
        piece = wave[first : first + num_samples]
        if num_samples - len(piece) > LENGTH_TOLERANCE * sample_rate:
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
    backend: AudioBackend = "decord",
) -> torch.Tensor:
    """Windows of ``spec.seconds`` from one file: float (N, S) waveforms or (N, n_mels,
    frames) log-mels per ``spec.representation``; one decode for all windows."""
    if len(window_starts) == 0:
        raise ValueError("no window starts given")
    starts = np.asarray(window_starts, dtype=np.float64)
    wave, offset = load_audio(
        path, spec.sample_rate, float(starts.min()), float(starts.max()) + spec.seconds
    )
    windows = cut_windows(wave, spec.sample_rate, offset, starts, spec.num_samples, path)
    return represent(windows, spec)
