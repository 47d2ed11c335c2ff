"""Media factories for the data tests: every file a test reads is generated here, in a
tmp folder, with content the test can predict (frame f is painted with a known grey
level; the audio is a known signal)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossmodal.data.writer import write_media

# Frame f is painted with a colour that names it: red = BASE + STEP * (f % RADIX), green =
# BASE + STEP * (f // RADIX), blue constant. Decoding a frame and reading its colour
# tells which frame it is; the steps are wide enough for the colour conversions of the
# encoder and of decord's scaler (a few levels each).
BASE, STEP, RADIX = 16, 10, 24


def frame_colour(index: np.ndarray | int) -> np.ndarray:
    index = np.asarray(index)
    return np.stack(
        [BASE + STEP * (index % RADIX), BASE + STEP * (index // RADIX), np.full_like(index, 128)],
        axis=-1,
    )


def decoded_index(frames: np.ndarray) -> np.ndarray:
    """Frame indices from decoded uint8 (..., H, W, 3) painted with ``frame_colour``."""
    colour = frames.reshape(*frames.shape[:-3], -1, 3).astype(np.float64).mean(axis=-2)
    digits = np.round((colour[..., :2] - BASE) / STEP).astype(int)
    return digits[..., 0] + RADIX * digits[..., 1]


def painted_frames(n: int, height: int = 64, width: int = 64) -> np.ndarray:
    if n > RADIX * RADIX:
        raise ValueError(f"at most {RADIX * RADIX} distinguishable frames")
    colours = frame_colour(np.arange(n)).astype(np.uint8)
    return np.broadcast_to(colours[:, None, None, :], (n, height, width, 3)).copy()


def tone(seconds: float, sample_rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


MakeVideo = Callable[..., Path]


@pytest.fixture
def make_video(tmp_path: Path) -> MakeVideo:
    """``make_video(name, frames=48, fps=12, audio="tone"|None|array, ...)`` → path."""

    def make(
        name: str = "clip.mp4",
        frames: int | np.ndarray = 48,
        fps: float = 12.0,
        audio: str | np.ndarray | None = "tone",
        sample_rate: int = 16000,
        size: tuple[int, int] = (64, 64),
        **kwargs: object,
    ) -> Path:
        pictures = painted_frames(frames, *size) if isinstance(frames, int) else frames
        seconds = len(pictures) / fps
        if isinstance(audio, str):
            audio = tone(seconds, sample_rate)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kwargs.get("video_codec", "libx264") == "libx264":
            # Lossless: at normal quality x264 may skip a frame that differs from the last
            # by a few grey levels, and the painted levels would no longer name the frame.
            kwargs.setdefault("video_options", {"preset": "ultrafast", "qp": "0"})
        return write_media(path, pictures, fps, audio, sample_rate, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_audio(tmp_path: Path) -> Callable[..., Path]:
    """``make_audio(name, samples (S,) or (C, S), sample_rate)`` → a wav/flac/... via soundfile."""
    import soundfile

    def make(name: str, samples: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
        path = tmp_path / name
        data = samples.T if samples.ndim == 2 else samples
        soundfile.write(str(path), data, sample_rate, subtype=subtype)
        return path

    return make


class Helpers:
    """Reference functions the tests compare decoded media against."""

    frame_colour = staticmethod(frame_colour)
    decoded_index = staticmethod(decoded_index)
    painted_frames = staticmethod(painted_frames)
    tone = staticmethod(tone)


@pytest.fixture
def helpers() -> type[Helpers]:
    return Helpers
