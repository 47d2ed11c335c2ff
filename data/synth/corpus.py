"""Generate the synthetic music-video corpus: .mp4 files (H.264 + AAC) and a manifest."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crossmodal.data.manifest import MANIFEST_NAME, ClipRecord, write_manifest
from crossmodal.data.synth.moods import MOODS
from crossmodal.data.synth.music import ALT_OF, TIMBRE_SETS, render_music
from crossmodal.data.synth.score import Score, sample_score
from crossmodal.data.synth.visuals import SHAPES, render_frames
from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_write_text

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Defaults: 4 s clips of 112×112 px at 12 fps with 16 kHz mono
    audio; 70/10/20 % train/val/test. ``crf``/``preset`` are libx264's quality/speed.

    Variants, all off by default (then the corpus is the same as without them):
    ``timbres`` ``"alt"`` plays every melody on another instrument (:data:`.music.ALT_OF`);
    ``clutter`` in [0, 1] adds a background texture and distractor shapes; ``shake`` ≥ 0
    moves every frame by up to ``shake`` × the frame size. See :func:`.visuals.render_frames`.
    """

    clips: int = 1400
    seed: int = 0
    duration: float = 4.0
    size: int = 112
    fps: float = 12.0
    sample_rate: int = 16000
    split: tuple[float, ...] = (0.7, 0.1, 0.2)
    crf: int = 26
    preset: str = "ultrafast"
    timbres: str = "default"
    clutter: float = 0.0
    shake: float = 0.0

    def __post_init__(self) -> None:
        if self.clips < 1:
            raise CrossmodalError(f"--clips must be at least 1, got {self.clips}")
        if self.seed < 0:
            raise CrossmodalError(f"--seed must be >= 0, got {self.seed}")
        if self.size < 16 or self.size % 2:
            raise CrossmodalError(f"--size must be even and >= 16 (H.264), got {self.size}")
        if self.duration <= 0 or self.fps <= 0 or self.sample_rate < 8000:
            raise CrossmodalError("duration and fps must be positive, sample rate >= 8000 Hz")
        if self.timbres not in TIMBRE_SETS:
            raise CrossmodalError(
                f"--timbres must be one of {', '.join(TIMBRE_SETS)}, got {self.timbres!r}"
            )
        if not (math.isfinite(self.clutter) and 0 <= self.clutter <= 1):
            raise CrossmodalError(f"--clutter must be in [0, 1], got {self.clutter:g}")
        if not (math.isfinite(self.shake) and self.shake >= 0):
            raise CrossmodalError(f"--shake must be a finite number >= 0, got {self.shake:g}")
        split_counts(self.clips, self.split)

    def variants(self) -> dict[str, object]:
        """The variant options that are on (empty for the default corpus)."""
        on = {"timbres": self.timbres != "default", "clutter": self.clutter, "shake": self.shake}
        return {name: getattr(self, name) for name, active in on.items() if active}


def parse_split(text: str) -> tuple[float, ...]:
    """``"0.7,0.1,0.2"`` (fractions summing to 1) or ``"1000,200,200"`` (clip counts)."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError as err:
        raise CrossmodalError(f"--split must be numbers separated by commas, got {text!r}") from err
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise CrossmodalError(f"--split takes 1 to 3 non-negative numbers, got {text!r}")
    return parts


def split_counts(clips: int, split: tuple[float, ...]) -> tuple[int, ...]:
    """Clips per split (train, val, test) from fractions or counts."""
    if all(float(p).is_integer() for p in split) and sum(split) == clips:
        return tuple(int(p) for p in split)
    total = sum(split)
    if abs(total - 1.0) > 1e-6:
        raise CrossmodalError(
            f"--split {','.join(f'{p:g}' for p in split)} must be fractions summing to 1 "
            f"or counts summing to --clips ({clips})"
        )
    counts = [int(np.floor(p * clips)) for p in split]
    counts[0] += clips - sum(counts)
    return tuple(counts)


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index``: independent of how many workers render."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def variant_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index``'s variant options (clutter, shake): apart from
    :func:`clip_rng`, so turning an option on leaves the rest of the clip unchanged."""
    return np.random.default_rng(np.random.SeedSequence([seed, index, 7]))


def mood_of(seed: int, index: int, clips: int) -> int:
    """Mood index of clip ``index``: a seeded permutation keeps the moods balanced."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 1 << 30])).permutation(clips)
    return int(order[index] % len(MOODS))


def render_clip(
    config: SynthConfig, index: int, mood_index: int
) -> tuple[np.ndarray, np.ndarray, Score]:
    """Frames uint8 (T, H, W, 3), waveform float32 (S,) and the score of one clip."""
    rng = clip_rng(config.seed, index)
    mood = MOODS[mood_index]
    score = sample_score(mood, rng, config.duration)
    audio = render_music(score, config.sample_rate, rng, timbres=config.timbres)
    frames = render_frames(
        score,
        mood,
        rng,
        fps=config.fps,
        height=config.size,
        width=config.size,
        clutter=config.clutter,
        shake=config.shake,
        variant_rng=variant_rng(config.seed, index),
    )
    return frames, audio, score


def _make_clip(job: tuple[SynthConfig, int, int, str]) -> dict[str, object]:
    from crossmodal.data.writer import write_media

    config, index, mood_index, path = job
    frames, audio, score = render_clip(config, index, mood_index)
    write_media(
        path,
        frames,
        config.fps,
        audio,
        config.sample_rate,
        video_options={"preset": config.preset, "crf": str(config.crf), "bf": "0"},
        audio_bit_rate=48000,
    )
    meta = score.meta()
    meta["shape"] = SHAPES[score.instrument]
    # Only when on, so a default corpus's manifest is unchanged.
    meta.update(config.variants())
    if config.timbres == "alt":
        meta["timbre"] = ALT_OF[score.instrument]
    return meta


def generate_corpus(
    out_dir: str | os.PathLike[str],
    config: SynthConfig,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``config.clips`` clips under ``out_dir/videos`` and ``out_dir/manifest.jsonl``.

    Deterministic given ``config`` whatever ``workers`` is: each clip draws from its own
    generator (``clip_rng``) and encoders run single-threaded. Splits are assigned by a
    seeded permutation; the manifest is written last, so an interrupted run leaves none.
    Returns the manifest path.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    manifest = out / MANIFEST_NAME
    if manifest.exists() and not overwrite:
        raise CrossmodalError(f"{manifest} exists; pass --overwrite to replace the corpus")
    (out / "videos").mkdir(parents=True, exist_ok=True)
    counts = split_counts(config.clips, config.split)
    order = np.random.default_rng(np.random.SeedSequence([config.seed, 1 << 31])).permutation(
        config.clips
    )
    split_of = np.empty(config.clips, dtype=object)
    for name, chunk in zip(SPLIT_NAMES, np.split(order, np.cumsum(counts)[:-1]), strict=False):
        split_of[chunk] = name

    jobs = []
    for i in range(config.clips):
        path = out / "videos" / f"clip_{i:06d}.mp4"
        jobs.append((config, i, mood_of(config.seed, i, config.clips), str(path)))
    started = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            metas = []
            for meta in pool.imap(_make_clip, jobs, chunksize=4):
                metas.append(meta)
                bar.update()
    else:
        metas = []
        for job in jobs:
            metas.append(_make_clip(job))
            bar.update()
    bar.close()
    elapsed = time.perf_counter() - started

    records = [
        ClipRecord(
            id=f"clip_{i:06d}",
            video=Path(path),
            label=MOODS[mood].name,
            split=split_of[i],
            start=0.0,
            end=config.duration,
            extra={"synth": meta},
        )
        for (_, i, mood, path), meta in zip(jobs, metas, strict=True)
    ]
    info = {
        "config": asdict(config),
        "moods": [m.name for m in MOODS],
        "splits": dict(zip(SPLIT_NAMES, counts, strict=False)),
        "seconds": round(elapsed, 2),
        "clips_per_second": round(config.clips / elapsed, 2),
    }
    atomic_write_text(out / "synth.json", json.dumps(info, indent=2) + "\n")
    write_manifest(records, manifest)
    log.info(
        "wrote %d clips to %s in %.1f s (%.1f clips/s)",
        config.clips,
        out,
        elapsed,
        config.clips / elapsed,
    )
    return manifest
