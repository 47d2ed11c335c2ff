"""Ingestion benchmark: `index` speed and memory per codec, against the raw-decode floor.

A library is generated with PyAV (music: Opus, AAC, MP3, FLAC, Vorbis, WAV at 44.1/48 kHz
stereo; videos in several codecs), then per codec, each in a fresh process:

- **index**: `Indexer.index` with the default model (random weights: speed does not
  depend on them), the library's files of that codec, one window every 2 s;
- **floor**: decoding only, same files, same run: the audio stream decoder (PyAV and
  ffmpeg's resampler to the model's rate) for music, the frames of every window for
  videos (the decoder chain), nothing embedded.

Reported: real-time factor (media seconds per wall second) of both, their ratio, and
peak RSS (VmHWM of the measuring process). Time is linear in duration when a 12-minute
track costs 4x a 3-minute one of the same codec.

Defaults reproduce the protocol of issue #13: 40 music files of 2-12 minutes and 20
videos of 10-120 s. `--quick` runs a reduced library (one 3-minute track per codec, a
12-minute Opus and AAC track for the linearity check, three 20-s videos).

    python bench/ingest.py            # the full protocol (long: ~5 h of music)
    python bench/ingest.py --quick    # what bench/results/ingest.md reports
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MUSIC_CODECS = {  # name: (encoder, extension, container)
    "opus": ("libopus", ".opus", "ogg"),
    "aac": ("aac", ".m4a", "mp4"),
    "mp3": ("libmp3lame", ".mp3", "mp3"),
    "flac": ("flac", ".flac", "flac"),
    "vorbis": ("vorbis", ".ogg", "ogg"),
    "wav": ("pcm_s16le", ".wav", "wav"),
}
VIDEO_CODECS = {  # name: (encoder, extension, container, audio encoder)
    "h264/mp4": ("libx264", ".mp4", "mp4", "aac"),
    "vp9/webm": ("libvpx-vp9", ".webm", "webm", "libopus"),
    "mpeg4/avi": ("mpeg4", ".avi", "avi", "libmp3lame"),
    "mjpeg/mov": ("mjpeg", ".mov", "mov", "aac"),
}
HOP = 2.0


def _music(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Stereo notes: a new pitch every quarter second, with an envelope and some noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    notes = 220.0 * 2 ** (rng.integers(0, 24, size=int(seconds * 4) + 1) / 12)
    freq = notes[(t * 4).astype(int)]
    phase = 2 * np.pi * np.cumsum(freq) / rate
    envelope = 0.5 + 0.5 * np.abs(np.sin(np.pi * t * 4))
    left = 0.3 * envelope * np.sin(phase) + 0.01 * rng.standard_normal(n)
    right = 0.3 * envelope * np.sin(1.5 * phase)
    return np.stack([left, right]).astype(np.float32)


def _pictures(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 144, 176, 3): a gradient drifting across the frame with a moving square
    (cheap to encode, unlike noise, and every frame differs)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:144, 0:176]
    frames = np.empty((n, 144, 176, 3), dtype=np.uint8)
    colour = rng.integers(0, 255, 3)
    for f in range(n):
        frames[f] = ((x + y + 3 * f)[..., None] + colour) % 256
        top, left = (5 * f) % 112, (7 * f) % 144
        frames[f, top : top + 32, left : left + 32] = 255 - colour
    return frames


def make_library(root: Path, quick: bool, seed: int = 0) -> dict[str, list[tuple[Path, float]]]:
    """Files per codec, with their durations. Existing files are reused."""
    from crossmodal.data.writer import write_media

    rng = np.random.default_rng(seed)
    plan: list[tuple[str, float]] = []
    if quick:
        plan = [(codec, 180.0) for codec in MUSIC_CODECS]
        plan += [("opus", 720.0), ("aac", 720.0)]
    else:  # 40 files of 2-12 minutes, spread over the codecs
        codecs = list(MUSIC_CODECS)
        plan = [(codecs[i % len(codecs)], float(rng.uniform(120, 720))) for i in range(40)]
        plan += [("opus", 180.0), ("opus", 720.0), ("aac", 180.0), ("aac", 720.0)]
    library: dict[str, list[tuple[Path, float]]] = {}
    for i, (codec, seconds) in enumerate(plan):
        encoder, ext, fmt = MUSIC_CODECS[codec]
        rate = 48000 if codec == "opus" or i % 2 else 44100
        path = root / "music" / codec / f"track {i:02d} {seconds:.0f}s{ext}"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_media(
                path,
                None,
                audio=_music(seconds, rate, i),
                sample_rate=rate,
                audio_codec=encoder,
                container_format=fmt,
            )
        library.setdefault(codec, []).append((path, seconds))
    videos = [20.0] * 3 if quick else [float(s) for s in rng.uniform(10, 120, size=20)]
    codecs = list(VIDEO_CODECS)
    for i, seconds in enumerate(videos):
        codec = codecs[i % len(codecs)]
        encoder, ext, fmt, audio = VIDEO_CODECS[codec]
        path = root / "videos" / f"video {i:02d} {seconds:.0f}s{ext}"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            n = round(seconds * 24)
            frames = _pictures(n, i)
            rate = 48000
            write_media(
                path,
                frames,
                24.0,
                _music(n / 24, rate, 100 + i),
                rate,
                video_codec=encoder,
                audio_codec=audio,
                container_format=fmt,
            )
        library.setdefault(f"video {codec}", []).append((path, seconds))
    return library


def _peak_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def measure(task: str, modality: str, files: list[str]) -> dict[str, float]:
    """Run in a fresh process: index or decode ``files``; wall seconds and peak RSS."""
    import torch

    from crossmodal.model import CrossModalModel, ModelConfig
    from crossmodal.retrieval.indexer import Indexer, LibraryFile

    torch.manual_seed(0)
    model = CrossModalModel.from_config(ModelConfig()).eval()
    paths = [Path(f) for f in files]
    started = time.perf_counter()
    if task == "breakdown":
        return _breakdown(model, paths[0])
    if task == "index":
        with tempfile.TemporaryDirectory() as out:
            report = Indexer(model, out, hop=HOP).index({modality: [LibraryFile(p) for p in paths]})
        if report.failed:
            raise SystemExit(f"indexing failed: {report.failed}")
    else:
        from crossmodal.data.audio import stream_audio
        from crossmodal.data.video import VideoFile, window_frame_times
        from crossmodal.data.windows import file_windows

        for path in paths:
            if modality == "music":
                for _ in stream_audio(path, model.audio_spec.sample_rate):
                    pass
            else:
                video = VideoFile(path, model.video_spec)
                window = model.audio_spec.seconds
                for start in file_windows(video.end, window, HOP):
                    video.frames_at(window_frame_times(model.video_spec, float(start), window))
    return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}


def _breakdown(model: object, path: Path) -> dict[str, float]:
    """Where one track's indexing time goes: decoding alone, decoding with windows cut
    and log-mels computed, and the music tower on those inputs."""
    import torch

    from crossmodal.data.audio import audio_window_batches, stream_audio

    spec = model.audio_spec  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in stream_audio(path, spec.sample_rate):
        pass
    decode = time.perf_counter() - started
    started = time.perf_counter()
    batches = list(audio_window_batches(path, spec, HOP, 32))
    windows = time.perf_counter() - started
    started = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            if len(batch.starts):
                model.encode("music", batch.inputs)
    encode = time.perf_counter() - started
    return {"decode": decode, "windows": windows - decode, "model": encode}


def _run(task: str, modality: str, files: list[Path]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", task, modality, *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the reduced library")
    parser.add_argument("--workdir", default="bench/.ingest_media", help="generated files")
    parser.add_argument("--out", default="bench/results/ingest.md")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        task, modality, *files = args.measure
        print(json.dumps(measure(task, modality, files)))
        return
    library = make_library(Path(args.workdir), args.quick)
    rows = []
    for codec, entries in library.items():
        modality = "video" if codec.startswith("video") else "music"
        files = [p for p, _ in entries]
        duration = sum(s for _, s in entries)
        index = _run("index", modality, files)
        floor = _run("decode", modality, files)
        rows.append((codec, len(files), duration, index, floor))
        print(
            f"{codec}: index {duration / index['seconds']:.0f}x real time, "
            f"{index['peak_mb']:.0f} MB; floor {duration / floor['seconds']:.0f}x",
            flush=True,
        )
    linear = []
    for codec in ("opus", "aac"):
        by_length = {s: p for p, s in library.get(codec, [])}
        if 180.0 in by_length and 720.0 in by_length:
            short = _run("index", "music", [by_length[180.0]])
            long = _run("index", "music", [by_length[720.0]])
            linear.append((codec, short, long))
    breakdown = None
    if "aac" in library:
        path, seconds = library["aac"][0]
        breakdown = (path.name, seconds, _run("breakdown", "music", [path]))
    write_table(Path(args.out), rows, linear, args.quick, breakdown)


def write_table(path: Path, rows: list, linear: list, quick: bool, breakdown: tuple | None) -> None:
    load = os.getloadavg()
    lines = [
        "# Ingestion: `index` per codec against the raw-decode floor",
        "",
        f"`python bench/ingest.py{' --quick' if quick else ''}` on a {os.cpu_count()}-core "
        f"machine (load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end; above "
        "about 1 other jobs shared the cores and absolute speeds are pessimistic: the ratio to "
        "the floor, timed in the same run, is the figure to read). Default model "
        "(`ModelConfig()`), one 4-s window every 2 s, each measurement in a fresh process.",
        "",
        "| codec | files | media s | index x real time | decode-only floor x real time "
        "| index / floor time | peak RSS index (MB) | peak RSS floor (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for codec, count, duration, index, floor in rows:
        lines.append(
            f"| {codec} | {count} | {duration:.0f} | {duration / index['seconds']:.0f} "
            f"| {duration / floor['seconds']:.0f} | {index['seconds'] / floor['seconds']:.2f} "
            f"| {index['peak_mb']:.0f} | {floor['peak_mb']:.0f} |"
        )
    if linear:
        lines += [
            "",
            "Time linear in duration (one file each, `index`): a 12-minute track should cost "
            "4x a 3-minute one (target ±20 %).",
            "",
            "| codec | 3 min: s | 12 min: s | ratio | peak RSS 3 min (MB) | peak RSS 12 min (MB) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for codec, short, long in linear:
            lines.append(
                f"| {codec} | {short['seconds']:.1f} | {long['seconds']:.1f} "
                f"| {long['seconds'] / short['seconds']:.2f} | {short['peak_mb']:.0f} "
                f"| {long['peak_mb']:.0f} |"
            )
    if breakdown:
        name, seconds, parts = breakdown
        total = sum(parts.values())
        lines += [
            "",
            f"Where the time of one track goes ({name}, {seconds:.0f} s, same run):",
            "",
            "| step | s | share |",
            "|---|---:|---:|",
        ]
        for step, label in (
            ("decode", "decode + resample (the floor)"),
            ("windows", "cut windows + log-mel"),
            ("model", "music tower (default model)"),
        ):
            lines.append(f"| {label} | {parts[step]:.2f} | {parts[step] / total:.0%} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(path)


if __name__ == "__main__":
    main()
