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

``--track`` measures whole-track throughput instead (a 3-minute track cut into each music
encoder's windows, embedded in batches; musicnn also as ``crossmodal tag`` computes it)
and replaces only that section of the results file::

    python bench/encoders.py --track --only audio_tiny,musicnn_msd,musicnn_vgg_msd

``--default-tower`` measures what ``crossmodal train``'s default music tower costs
(``audio_tiny`` with ``DEFAULT_MUSIC_OVERRIDES``: waveform input, clip summary, harmony)
against the same tower without the harmony summary on log-mels (the previous default,
whose log-mels the data pipeline computes once and caches), in the same run: a training
step at ``--train-batch-size`` and a whole track; it replaces only that section.
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


TRACK_HEADING = "## Whole-track throughput"
DEFAULT_TOWER_HEADING = "## crossmodal train's default music tower"


def bench_track(
    name: str, track_seconds: float, batch_size: int, repeats: int, min_time: float
) -> dict[str, object]:
    """Seconds to embed a ``track_seconds`` track with music encoder ``name``: the track
    cut into consecutive windows of the encoder's input, represented as its spec says
    (log-mel or waveform), embedded ``batch_size`` windows at a time."""
    from crossmodal.data.audio import represent

    encoder = create_encoder(name).eval()
    spec = encoder.audio_spec
    generator = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(round(track_seconds * spec.sample_rate), generator=generator)
    count = len(wave) // spec.num_samples

    def run() -> None:
        windows = represent(wave[: count * spec.num_samples].reshape(count, -1), spec)
        for start in range(0, count, batch_size):
            encoder(windows[start : start + batch_size])

    with torch.no_grad():
        wall, cpu = seconds_per_call(run, repeats, min_time)
    return {"name": name, "windows": count, "seconds": spec.seconds, "wall": wall, "cpu": cpu}


def bench_default_tower(args: argparse.Namespace) -> str:
    """The default-tower section: training step and whole-track cost of train's default
    music tower against the previous default (log-mel input, no harmony)."""
    from crossmodal.data.audio import represent
    from crossmodal.training.config import DEFAULT_MUSIC_OVERRIDES

    previous = {k: v for k, v in DEFAULT_MUSIC_OVERRIDES.items() if k == "summary_lags"}
    towers = {
        "previous default (log-mel, clip summary)": previous,
        "default (waveform, clip summary, harmony)": dict(DEFAULT_MUSIC_OVERRIDES),
        "default without harmony (waveform, clip summary)": {
            **DEFAULT_MUSIC_OVERRIDES,
            "harmony": False,
        },
    }
    generator = torch.Generator().manual_seed(0)
    rows = []
    for label, overrides in towers.items():
        print(f"default tower: {label} ...", file=sys.stderr, flush=True)
        encoder = create_encoder("audio_tiny", **overrides)
        spec = encoder.audio_spec
        waves = 0.1 * torch.randn(args.train_batch_size, spec.num_samples, generator=generator)
        clips = represent(waves, spec)  # what the data pipeline hands the tower
        encoder.train()

        def step(encoder=encoder, clips=clips) -> None:
            encoder(clips).square().mean().backward()

        _, step_cpu = seconds_per_call(step, args.repeats, args.min_time)
        track = 0.1 * torch.randn(round(args.track_seconds * spec.sample_rate), generator=generator)
        count = len(track) // spec.num_samples
        encoder.eval()

        def run(encoder=encoder, spec=spec, track=track, count=count) -> None:
            windows = represent(track[: count * spec.num_samples].reshape(count, -1), spec)
            for start in range(0, count, args.batch_size):
                encoder(windows[start : start + args.batch_size])

        with torch.no_grad():
            _, track_cpu = seconds_per_call(run, args.repeats, args.min_time)
        rows.append((label, step_cpu, track_cpu))
    base_step, base_track = rows[0][1], rows[0][2]
    lines = [
        DEFAULT_TOWER_HEADING,
        "",
        f"`python bench/encoders.py --default-tower` on "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"thread(s), load average {os.getloadavg()[0]:.1f} at the end. CPU seconds (steadier "
        f"than wall time on a shared machine), median of ≥{args.repeats} calls: one training "
        f"step of the music tower alone (forward + backward, batch {args.train_batch_size}, "
        "its input as the data pipeline hands it: log-mels are computed once per clip and "
        f"cached, waveforms are not), and a {args.track_seconds:g} s track embedded "
        f"{args.batch_size} windows per call (front end included). × previous: against the "
        "first row, timed in the same run.",
        "",
        "| music tower | step CPU s | × previous | track CPU s | × previous |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, step_cpu, track_cpu in rows:
        lines.append(
            f"| {label} | {step_cpu:.3f} | {step_cpu / base_step:.2f} | {track_cpu:.2f} | "
            f"{track_cpu / base_track:.2f} |"
        )
    return "\n".join(lines) + "\n"


def bench_tagging(
    track_seconds: float, batch_size: int, repeats: int, min_time: float
) -> dict[str, object]:
    """Seconds of ``crossmodal tag``'s work on a decoded track (one log-mel of the whole
    track, 187-frame windows, tag probabilities averaged)."""
    from crossmodal.tagging import Tagger

    tagger = Tagger("msd", batch_size=batch_size)
    generator = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(round(track_seconds * tagger.sample_rate), generator=generator)
    wall, cpu = seconds_per_call(lambda: tagger.tag_waveform(wave), repeats, min_time)
    windows = tagger.tag_waveform(wave).num_windows
    return {"name": "crossmodal tag (musicnn_msd)", "windows": windows, "wall": wall, "cpu": cpu}


def track_markdown(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    baseline = next((r["cpu"] for r in rows if r["name"] == "audio_tiny"), float("nan"))
    lines = [
        TRACK_HEADING,
        "",
        f"`python bench/encoders.py --track` on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}, load average "
        f"{os.getloadavg()[0]:.1f} at the end (a machine shared with other jobs: the CPU "
        f"columns are the steadier ones). A {args.track_seconds:g} s track cut into each "
        f"encoder's windows, embedded {args.batch_size} windows per call, front end "
        "included, decoding excluded; median of "
        f"≥{args.repeats} runs. `× real time` = track length / time (higher is faster); "
        "`CPU × audio_tiny`: CPU time relative to audio_tiny in this run.",
        "",
        "| encoder | windows | wall s | × real time | CPU s | × real time (CPU) "
        "| CPU × audio_tiny |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['windows']} | {r['wall']:.2f} | "
            f"{args.track_seconds / r['wall']:.0f} | {r['cpu']:.2f} | "
            f"{args.track_seconds / r['cpu']:.0f} | {r['cpu'] / baseline:.3g} |"
        )
    return "\n".join(lines) + "\n"


def replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with the section under ``heading`` (up to the next ``## ``) replaced by
    ``section``, or ``section`` appended when there is none."""
    start = text.find(heading)
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + len(heading))
    rest = "" if end < 0 else text[end:]
    return text[:start] + section + rest


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
    parser.add_argument(
        "--track", action="store_true", help="whole-track throughput of the music encoders"
    )
    parser.add_argument("--track-seconds", type=float, default=180.0)
    parser.add_argument(
        "--default-tower",
        action="store_true",
        help="cost of crossmodal train's default music tower against the previous default",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.default_tower:
        section = bench_default_tower(args)
        print(section)
        previous = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        atomic_write_text(args.output, replace_section(previous, DEFAULT_TOWER_HEADING, section))
        return 0
    if args.track:
        return main_track(args)
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
    previous = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
    if TRACK_HEADING in previous:  # keep the last --track section
        text = replace_section(text, TRACK_HEADING, previous[previous.find(TRACK_HEADING) :])
    atomic_write_text(args.output, text)
    return 0


def main_track(args: argparse.Namespace) -> int:
    names = args.only.split(",") if args.only else list_encoders("music")
    names = ["audio_tiny", *(n for n in names if n != "audio_tiny")]
    rows = []
    for name in names:
        print(f"whole track through {name} ...", file=sys.stderr, flush=True)
        rows.append(
            bench_track(name, args.track_seconds, args.batch_size, args.repeats, args.min_time)
        )
    print("whole track through crossmodal tag ...", file=sys.stderr, flush=True)
    rows.append(bench_tagging(args.track_seconds, args.batch_size, args.repeats, args.min_time))
    section = track_markdown(rows, args)
    print(section)
    previous = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
    atomic_write_text(args.output, replace_section(previous, TRACK_HEADING, section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
