"""Media factories for the data tests: every file a test reads is generated here, in a
tmp folder, with content the test can predict (frame f is painted with a known grey
level; the audio is a known signal)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
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


def write_manifest_lines(tmp_path: Path, lines: list[dict]) -> Path:
    """Write ``lines`` as tmp_path/manifest.jsonl."""
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    return path


@pytest.fixture
def mixed(tmp_path: Path, make_video: MakeVideo, make_audio: Callable[..., Path]) -> Path:
    """A manifest with good clips and one clip per kind of problem."""
    make_video("good one.mp4", frames=36)
    make_video("ünïcode clip.mp4", frames=36)
    make_video("silent.mp4", frames=36, audio=None)
    make_video("short_audio.mp4", frames=36, audio=tone(1.0, 16000))
    make_video("short.mp4", frames=12)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("I am a text file with a video's name\n" * 30)
    whole = make_video("whole.mp4", frames=36).read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    make_audio("music.wav", tone(3.0, 16000), 16000)
    lines = [
        {"id": "good", "video": "good one.mp4"},
        {"id": "unicode", "video": "ünïcode clip.mp4"},
        {"id": "external", "video": "silent.mp4", "audio": "music.wav"},
        {"id": "silent", "video": "silent.mp4"},
        {"id": "short_audio", "video": "short_audio.mp4"},
        {"id": "short", "video": "short.mp4"},
        {"id": "empty", "video": "empty.mp4"},
        {"id": "text", "video": "text.mp4"},
        {"id": "truncated", "video": "truncated.mp4"},
        {"id": "missing", "video": "gone.mp4"},
        {"id": "end_past_media", "video": "good one.mp4", "start": 0.5, "end": 9.0},
    ]
    return write_manifest_lines(tmp_path, lines)


# What check_manifest must say about each bad clip of ``mixed``: (file, error class, reason).
MIXED_PROBLEMS = {
    "silent": ("silent.mp4", "NoStreamError", "no audio stream (the manifest's audio is null"),
    "short_audio": ("short_audio.mp4", "TooShortError", "music lasts 1.0"),
    "short": ("short.mp4", "TooShortError", "shorter than the 2 s window"),
    "empty": ("empty.mp4", "CorruptMediaError", "empty file (0 bytes)"),
    "text": ("text.mp4", "CorruptMediaError", "not a readable media file"),
    "truncated": ("truncated.mp4", "CorruptMediaError", "not a readable media file"),
    "missing": ("gone.mp4", "MissingMediaError", "no such file"),
    "end_past_media": ("good one.mp4", "TooShortError", "video ends at 3.000 s"),
}


@pytest.fixture
def mixed_expected() -> dict[str, tuple[str, str, str]]:
    return MIXED_PROBLEMS


@pytest.fixture
def manifest_writer() -> Callable[[Path, list[dict]], Path]:
    return write_manifest_lines


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # The data path runs in DataLoader workers with one thread each; on a shared 2-core
    # machine two threads make the small FFTs and gathers of these tests several times slower.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
