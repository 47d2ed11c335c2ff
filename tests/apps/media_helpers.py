"""Real media and a small real index for the dub, web app and report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from crossmodal.data.writer import write_media

MUSIC_RATE = 44100


def noise_music(seconds: float, seed: int = 0, rate: int = MUSIC_RATE) -> np.ndarray:
    """Low-passed noise: broadband enough that cross-correlation finds one sharp peak."""
    rng = np.random.default_rng(seed)
    wave = np.convolve(rng.standard_normal(round(seconds * rate)), np.ones(8) / 8, "same")
    return (0.5 * wave).astype(np.float32)


def make_video(
    path: Path,
    seconds: float = 3.0,
    *,
    size: tuple[int, int] = (64, 80),
    codec: str = "libx264",
    tone_hz: float | None = 440.0,
    seed: int = 0,
) -> Path:
    """A 12 fps noise video of ``size`` (H, W), with a 0.3-amplitude sine soundtrack
    at ``tone_hz`` (None: no audio stream)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (round(seconds * 12), *size, 3), dtype=np.uint8)
    audio = None
    if tone_hz is not None:
        t = np.arange(round(seconds * 16000)) / 16000
        audio = 0.3 * np.sin(2 * np.pi * tone_hz * t)
    return write_media(path, frames, fps=12, audio=audio, sample_rate=16000, video_codec=codec)


def best_lag(signal: np.ndarray, reference: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, normalised correlation) maximising corr(signal, reference[lag + max_lag:]):
    ``reference`` must be ``len(signal) + 2 * max_lag`` long, centred on lag 0. Written
    as a plain loop over lags from the definition."""
    best = (0, -1.0)
    for lag in range(-max_lag, max_lag + 1):
        segment = reference[lag + max_lag : lag + max_lag + len(signal)]
        denom = float(np.linalg.norm(segment) * np.linalg.norm(signal)) or 1.0
        score = float(np.dot(segment, signal)) / denom
        if score > best[1]:
            best = (lag, score)
    return best


# Markup planted in user-controlled strings (a file name cannot hold "/").
SCRIPT = "<script>alert(1)</script>"
FILE_XSS = "<img src=x onerror=alert(1)>"


def build_index(root: Path, clips: int = 6, planted: bool = False) -> tuple[Path, Path]:
    """A synthetic corpus of ``clips`` 4-s clips and an index of all its music and videos
    built by a small untrained model. ``planted``: one more clip of each, named
    :data:`FILE_XSS` and labelled :data:`SCRIPT`. Returns (manifest, index folder)."""
    import shutil

    from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
    from crossmodal.model import CrossModalModel, ModelConfig
    from crossmodal.retrieval.indexer import Indexer, LibraryFile, library_files

    manifest = generate_corpus(
        root / "corpus", SynthConfig(clips=clips, size=48, split=(1.0, 0.0, 0.0)), progress=False
    )
    libraries = {
        "music": library_files(manifest, "music"),
        "video": library_files(manifest, "video"),
    }
    if planted:
        for modality, files in libraries.items():
            source = files[-1].path
            copy = root / "planted" / modality / f"{FILE_XSS}{source.suffix}"
            copy.parent.mkdir(parents=True)
            shutil.copyfile(source, copy)
            files.append(LibraryFile(copy, label=SCRIPT, clip_id=SCRIPT))
    torch.manual_seed(0)
    model = CrossModalModel.from_config(ModelConfig(embed_dim=32)).eval()
    index_dir = root / "index"
    Indexer(model, index_dir).index(libraries)
    return manifest, index_dir
