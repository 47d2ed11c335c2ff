"""Data-layer benchmark: synthetic corpus speed, loader vs raw decord, warm cache.

    python bench/data.py [--clips 48] [--repeats 3] [--out bench/results/data.md]

Every speed is measured in this run and reported with its ratio to a baseline timed in
the same run (the machine may be shared: absolute numbers move, ratios much less).
Baseline: raw decord on the same files and windows, i.e. ``VideoReader(width, height)
.get_batch(frame indices)`` plus ``AudioReader(mono=True)`` per clip, nothing else. The
loader does what training does on top: probe, window, normalise, resample, log-mel,
collate. Each figure is the best of ``--repeats`` passes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from crossmodal.data import (
    AudioSpec,
    FeatureCache,
    PairedClipDataset,
    VideoSpec,
    make_loader,
    read_manifest,
    window_frame_times,
)
from crossmodal.data.decoders import decord_module
from crossmodal.data.synth import SynthConfig, generate_corpus

VIDEO = VideoSpec(num_frames=16, height=112, width=112)
AUDIO = AudioSpec(sample_rate=16000, seconds=4.0, representation="logmel", n_mels=64)


def best_rate(count: int, run: Callable[[], object], repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` passes of ``run``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def raw_decord(manifest: Path) -> Callable[[], None]:
    decord = decord_module()
    records = read_manifest(manifest)

    def run() -> None:
        for record in records:
            reader = decord.VideoReader(
                str(record.video), width=VIDEO.width, height=VIDEO.height, num_threads=1
            )
            stamps = reader.get_frame_timestamp(np.arange(len(reader)))[:, 0]
            times = window_frame_times(VIDEO, 0.0, AUDIO.seconds)
            indices = np.clip(
                np.searchsorted(stamps, times + 1e-6, side="right") - 1, 0, len(reader) - 1
            )
            reader.get_batch(indices.tolist()).asnumpy()
            decord.AudioReader(str(record.music), sample_rate=-1, mono=True)[:].asnumpy()

    return run


def loader_pass(dataset: PairedClipDataset, workers: int) -> Callable[[], None]:
    loader = make_loader(dataset, batch_size=8, num_workers=workers)

    def run() -> None:
        for _ in loader:
            pass

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clips", type=int, default=48, help="clips in the benchmark corpus (default: 48)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="passes per figure, best kept (default: 3)"
    )
    parser.add_argument("--out", default="bench/results/data.md", help="markdown file to write")
    args = parser.parse_args()
    # One torch thread, as in DataLoader workers: the baseline decodes single-threaded too.
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        config = SynthConfig(clips=args.clips, seed=0, split=(1.0, 0.0, 0.0))
        started = time.perf_counter()
        manifest = generate_corpus(tmp_path / "one", config, progress=False)
        synth_1 = args.clips / (time.perf_counter() - started)
        started = time.perf_counter()
        generate_corpus(tmp_path / "two", config, workers=2, progress=False)
        synth_2 = args.clips / (time.perf_counter() - started)

        raw = best_rate(args.clips, raw_decord(manifest), args.repeats)
        cold = PairedClipDataset(manifest, VIDEO, AUDIO)
        loader_0 = best_rate(args.clips, loader_pass(cold, 0), args.repeats)
        loader_2 = best_rate(args.clips, loader_pass(cold, 2), args.repeats)
        cache = FeatureCache(tmp_path / "cache")
        cached = PairedClipDataset(manifest, VIDEO, AUDIO, cache=cache)
        fill = best_rate(args.clips, loader_pass(cached, 0), 1)  # first epoch: decode + store
        warm_0 = best_rate(args.clips, loader_pass(cached, 0), args.repeats)
        warm_2 = best_rate(args.clips, loader_pass(cached, 2), args.repeats)
        cache_mb = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.npz")) / 1e6

    rows = [
        ("raw decord (video get_batch + AudioReader)", raw, 1.0, "baseline"),
        ("PairedClipDataset, 0 workers", loader_0, loader_0 / raw, "target >= 0.8x"),
        ("PairedClipDataset, 2 workers", loader_2, loader_2 / raw, "target >= 0.8x"),
        ("first epoch filling the cache, 0 workers", fill, fill / raw, ""),
        (
            "warm cache, 0 workers",
            warm_0,
            warm_0 / loader_0,
            "vs cold loader, 0 workers; target >= 10x",
        ),
        ("warm cache, 2 workers", warm_2, warm_2 / loader_2, "vs cold loader, 2 workers"),
        ("synth corpus, 1 worker", synth_1, 1.0, "target >= 5 clips/s"),
        (
            "synth corpus, 2 workers",
            synth_2,
            synth_2 / synth_1,
            "vs 1 worker (includes process start)",
        ),
    ]
    lines = [
        "# Data-layer benchmark",
        "",
        f"{args.clips} synthetic clips (4 s, 112x112, 12 fps, 16 kHz AAC); windows of {AUDIO.seconds:g} s: "
        f"{VIDEO.num_frames} frames at {VIDEO.height}x{VIDEO.width} + {AUDIO.n_mels}-band log-mel; "
        f"batch 8; best of {args.repeats} passes. Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end; torch {torch.__version__}.",
        f"Cache: {cache_mb:.1f} MB for {args.clips} clips (fixed evaluation windows are stored "
        "finished: 16 uint8 frames + the log-mel).",
        "",
        "| what | clips/s | ratio | note |",
        "|---|---:|---:|---|",
        *[f"| {name} | {rate:.1f} | {ratio:.2f}x | {note} |" for name, rate, ratio, note in rows],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
