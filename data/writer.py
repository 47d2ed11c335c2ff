"""Write video (+ soundtrack) and audio files with PyAV: the synthetic corpus and the tests
use it to make real media files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossmodal.fileio import atomic_path

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import OutputContainer

# Encoder settings: H.264 needs even width and height; use "mpeg4" for odd sizes.
DEFAULT_X264 = {"preset": "veryfast", "crf": "26", "bf": "0"}
AUDIO_FRAME = 1024
# ffmpeg's own encoders it still calls experimental (this PyAV build has no libvorbis).
_EXPERIMENTAL_ENCODERS = ("vorbis",)
# Integer sample formats an encoder may ask for: (dtype, full-scale value).
_INTEGER_FORMATS = {"s16": (np.int16, 32767), "s32": (np.int32, 2**31 - 1)}


def write_media(
    path: str | os.PathLike[str],
    frames: np.ndarray | None,
    fps: float = 12.0,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    *,
    video_codec: str = "libx264",
    video_options: dict[str, str] | None = None,
    audio_codec: str = "aac",
    audio_bit_rate: int | None = None,
    layout: str | None = None,
    frame_times: Sequence[float] | None = None,
    container_format: str | None = None,
) -> Path:
    """Encode ``frames`` and/or ``audio`` into one file, atomically.

    ``frames``: uint8 (T, H, W, 3) RGB, or None for an audio-only file. Frame ``f`` is
    shown at ``f / fps`` seconds, or at ``frame_times[f]`` (variable frame rate; the
    stream's time base is then 1/1000 s). ``audio``: float (S,) mono or (C, S) with C
    channels in [-1, 1], or None for a silent video; ``layout`` names the channel layout
    (default "mono"/"stereo"/"5.1" from C). Video is yuv420p with ``video_codec``
    (libx264: ``DEFAULT_X264`` unless ``video_options``); audio is ``audio_codec``.
    The file is written to a temporary name in the same folder and renamed into place,
    so a reader never sees half a file. Returns the path.
    """
    import av

    path = Path(path)
    if frames is None and audio is None:
        raise ValueError("nothing to write: give frames, audio or both")
    fmt = container_format or {".mkv": "matroska", ".mov": "mov", ".m4a": "mp4"}.get(
        path.suffix.lower(), path.suffix.lower().lstrip(".") or "mp4"
    )
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=fmt) as container:
        video_stream = None
        if frames is not None:
            frames = np.asarray(frames)
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise ValueError(
                    f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
                )
            rate = Fraction(fps).limit_denominator(1001)
            video_stream = container.add_stream(video_codec, rate=rate)
            video_stream.width = frames.shape[2]
            video_stream.height = frames.shape[1]
            # MJPEG takes full-range YUV ("yuvj"); every other codec here limited-range.
            video_stream.pix_fmt = "yuvj420p" if video_codec == "mjpeg" else "yuv420p"
            video_stream.codec_context.thread_count = 1
            if video_codec == "libx264":
                video_stream.options = dict(video_options or DEFAULT_X264)
            elif video_options:
                video_stream.options = dict(video_options)
            if frame_times is not None:
                video_stream.codec_context.time_base = Fraction(1, 1000)
        audio_stream = None
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim == 1:
                audio = audio[None, :]
            channels = audio.shape[0]
            audio_stream = container.add_stream(audio_codec, rate=sample_rate)
            if audio_codec in _EXPERIMENTAL_ENCODERS:
                audio_stream.codec_context.options = {"strict": "experimental"}
            audio_stream.layout = layout or {1: "mono", 2: "stereo", 6: "5.1"}[channels]
            if audio_bit_rate:
                audio_stream.codec_context.bit_rate = audio_bit_rate
        if video_stream is not None:
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                if frame_times is not None:
                    frame.pts = round(float(frame_times[i]) * 1000)
                    frame.time_base = Fraction(1, 1000)
                container.mux(video_stream.encode(frame))
            container.mux(video_stream.encode(None))
        if audio_stream is not None:
            _encode_audio(container, audio_stream, audio, sample_rate)
    return path


def _encode_audio(
    container: OutputContainer, stream: AudioStream, audio: np.ndarray, sample_rate: int
) -> None:
    import av

    codec_format = stream.codec_context.format.name
    # Hand the encoder many codec frames at a time (PyAV splits them): per-frame Python
    # overhead was ~40 % of encoding 4 s of AAC.
    chunk_size = 64 * (stream.codec_context.frame_size or AUDIO_FRAME)
    layout = stream.layout.name
    for start in range(0, audio.shape[1], chunk_size):
        chunk = np.ascontiguousarray(audio[:, start : start + chunk_size])
        if codec_format.rstrip("p") in _INTEGER_FORMATS:
            dtype, peak = _INTEGER_FORMATS[codec_format.rstrip("p")]
            chunk = np.round(np.clip(chunk, -1, 1).astype(np.float64) * peak).astype(dtype)
        if not codec_format.endswith("p"):  # packed: channels interleaved in one plane
            chunk = chunk.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format=codec_format, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
