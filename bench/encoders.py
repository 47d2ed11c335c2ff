"""Encoder benchmark: parameters, MACs and CPU throughput of every registered encoder at
its default input, plus the training cost of the tiny towers.

    python bench/encoders.py                      # all encoders, table to stdout + file
    python bench/encoders.py --only video_tiny,audio_tiny --repeats 5

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for one clip (FLOPs / 2;
convolutions, matmuls and attention; librosa's work in ``descriptors`` is not counted).
Throughput is inference (eval mode, no grad) at ``--batch-size``, as wall-clock clips/s
and as this process's CPU time per clip; the machine may be shared, so each row also
gives its CPU cost relative to the tiny encoder of the same modality timed in the same
run. Results go to stdout and bench/results/encoders.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from crossmodal.encoders import create_encoder, get_entry, list_encoders
from crossmodal.fileio import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "encoders.md"


def input_text(encoder: torch.nn.Module) -> str:
    spec = encoder.spec
    if encoder.modality == "video":
        rate = f"@{spec.fps:g}fps" if spec.fps else ""
        return f"{spec.num_frames}×{spec.height}×{spec.width}{rate}"
    if spec.representation == "waveform":
        return f"wave {spec.seconds:g}s@{spec.sample_rate // 1000}k"
    return f"mel {spec.n_mels}×{spec.num_mel_frames}"


def seconds_per_call(fn, repeats: int, min_time: float) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of ``fn()`` over at least ``repeats`` calls and
    ``min_time`` s. CPU time counts only this process's work, so on a busy machine it is
    the steadier estimate of what one call costs (with one thread: its idle wall time)."""
    fn()  # warm-up: allocations, oneDNN kernel selection
    walls: list[float] = []
    cpus: list[float] = []
    start = time.perf_counter()
    while len(walls) < repeats or time.perf_counter() - start < min_time:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def bench_inference(name: str, batch_size: int, repeats: int, min_time: float) -> dict[str, object]:
    encoder = create_encoder(name).eval()
    clips = encoder.example_input(batch_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            encoder(clips[:1])
        seconds, cpu_seconds = seconds_per_call(lambda: encoder(clips), repeats, min_time)
    return {
        "name": name,
        "modality": encoder.modality,
        "input": input_text(encoder),
        "dim": encoder.output_dim,
        "params": encoder.num_parameters(),
        "gmacs": counter.get_total_flops() / 2 / 1e9,
        "clips_per_s": batch_size / seconds,
        "cpu_ms": cpu_seconds / batch_size * 1e3,
    }


def bench_training(
    name: str, batch_size: int, repeats: int, min_time: float
) -> tuple[float, float]:
    """(wall, CPU) seconds of forward + backward per clip in train mode."""
    encoder = create_encoder(name).train()
    clips = encoder.example_input(batch_size, generator=torch.Generator().manual_seed(0))

    def step() -> None:
        out = encoder(clips)
        out.square().mean().backward()

    wall, cpu = seconds_per_call(step, repeats, min_time)
    return wall / batch_size, cpu / batch_size


def markdown(
    rows: list[dict[str, object]], train: dict[str, tuple[float, float]], args: argparse.Namespace
) -> str:
    tiny = {r["modality"]: r["cpu_ms"] for r in rows if r["name"] in ("video_tiny", "audio_tiny")}
    lines = [
        "# Encoder benchmark",
        "",
        f"`python bench/encoders.py` on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}, load average "
        f"{os.getloadavg()[0]:.1f} at the end; inference at "
        f"batch {args.batch_size}, median of ≥{args.repeats} calls. Random weights, default "
        "input of each encoder. MACs per clip (FlopCounterMode FLOPs / 2). "
        "`clips/s` is wall-clock; `CPU ms/clip` is this process's CPU time (steadier on a "
        "shared machine); `× tiny`: CPU cost relative to the tiny encoder of the same "
        "modality in this run.",
        "",
        "| encoder | modality | input | D | params | GMACs/clip | clips/s | CPU ms/clip | × tiny |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["cpu_ms"] / tiny[r["modality"]] if r["modality"] in tiny else float("nan")
        lines.append(
            f"| {r['name']} | {r['modality']} | {r['input']} | {r['dim']} | "
            f"{r['params'] / 1e6:.2f}M | {r['gmacs']:.3f} | {r['clips_per_s']:.2f} | "
            f"{r['cpu_ms']:.3g} | {ratio:.3g} |"
        )
    if train:
        lines += [
            "",
            f"Training cost (forward + backward, train mode, batch {args.train_batch_size}):",
            "",
            "| encoder | wall ms/clip | CPU ms/clip (= CPU-s per 1000 clips) |",
            "|---|---:|---:|",
        ]
        for name, (wall, cpu) in train.items():
            lines.append(f"| {name} | {wall * 1e3:.1f} | {cpu * 1e3:.1f} |")
        if {"video_tiny", "audio_tiny"} <= set(train):
            wall = train["video_tiny"][0] + train["audio_tiny"][0]
            cpu = train["video_tiny"][1] + train["audio_tiny"][1]
            lines.append(f"| both tiny towers | {wall * 1e3:.1f} | {cpu * 1e3:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated encoder names (default: all)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per encoder, at least")
    parser.add_argument("--train-batch-size", type=int, default=64)
    parser.add_argument("--no-train", action="store_true", help="skip the training-cost table")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.only.split(",") if args.only else list_encoders()
    # the tiny encoders are the baselines of the ratio column: always measured, first
    order = [n for n in ("video_tiny", "audio_tiny") if n not in names] + names
    names = sorted(
        dict.fromkeys(order),
        key=lambda n: (get_entry(n).meta["modality"], not n.endswith("_tiny"), n),
    )
    torch.manual_seed(0)
    rows = []
    for name in names:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_inference(name, args.batch_size, args.repeats, args.min_time))
    train = {}
    if not args.no_train:
        for name in ("video_tiny", "audio_tiny"):
            print(f"training step of {name} ...", file=sys.stderr, flush=True)
            train[name] = bench_training(name, args.train_batch_size, args.repeats, args.min_time)
    text = markdown(rows, train, args)
    print(text)
    atomic_write_text(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
