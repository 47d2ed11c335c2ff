"""Soak benchmark (issue 18): memory of long-running processes must not grow.

Two parts, each in its own subprocess so that peak-RSS numbers are clean:

queries — one process answers mixed queries against a small index, RSS sampled every
          ``--sample-every`` queries. Three kinds of query, interleaved, each also
          reported alone: ``search`` (store only: a precomputed vector, per-item search
          of both libraries), ``recommend`` (decode a video's frames, embed, search
          music) and ``find-video`` (decode a soundtrack, embed, search videos). Growth is
          measured after a warm-up (the first 10 % of queries): the RSS at the end minus
          the RSS after warm-up, and a least-squares slope (KB per query) over the samples.
          Target: ≤ 10 MB growth over 10,000 queries.
index   — `crossmodal index --music` over N generated music files, for several N, each in
          a fresh process: peak RSS must be flat in N (no per-file leak).

Audio decodes by PyAV streaming (``crossmodal.data.audio``); the decord ``AudioReader``
it replaced leaked ~270 KB per decode, which this benchmark measured before the switch.

    python bench/soak.py                         # 10,000 queries; index of 100/400/1600 files
    python bench/soak.py --quick                 # 1,500 queries; index of 50/200 files

Writes a markdown table to stdout and bench/results/soak.md. Shared machines: the
numbers say which machine and load they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "soak.md"
SAMPLE_RATE = 16000


def rss_mb() -> float:
    """Resident set size of this process now, in MiB (from /proc; no psutil needed)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model(out: Path) -> Path:
    import torch

    from crossmodal.model import CrossModalModel, ModelConfig

    torch.manual_seed(0)
    path = out / "model.pt"
    CrossModalModel.from_config(ModelConfig(embed_dim=64)).save(path)
    return path


def _music_files(folder: Path, count: int, codec: str, seconds: float = 6.0) -> None:
    """``count`` distinct tracks (chords with a beat): WAV (soundfile) or AAC in .m4a (PyAV)."""
    import av
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    for i in range(count):
        notes = 220 * 2 ** (rng.integers(0, 24, size=3) / 12)
        beat = 0.5 + 0.5 * (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0)
        wave = (sum(np.sin(2 * np.pi * f * t) for f in notes) * beat / 4).astype(np.float32)
        if codec == "wav":
            sf.write(folder / f"track_{i:05d}.wav", wave, SAMPLE_RATE)
            continue
        with av.open(str(folder / f"track_{i:05d}.m4a"), "w") as container:
            stream = container.add_stream("aac", rate=SAMPLE_RATE)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(wave[None, :], format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)


def run_queries(args: argparse.Namespace) -> dict:
    """Child process: build a small index, then answer mixed queries sampling RSS."""
    import faiss
    import torch

    from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
    from crossmodal.retrieval.indexer import Indexer, library_files
    from crossmodal.retrieval.recommender import Recommender

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    work = Path(args.work)
    manifest = generate_corpus(
        work / "corpus", SynthConfig(clips=8, size=64, split=(1.0, 0.0, 0.0)), progress=False
    )
    from crossmodal.model import CrossModalModel

    model = CrossModalModel.load(_model(work))
    videos = library_files(manifest, "video")
    Indexer(model, work / "index").index(
        {"music": library_files(manifest, "music"), "video": videos}
    )
    rec = Recommender.load(work / "index")
    queries = [str(f.path) for f in videos]
    vectors = (
        np.random.default_rng(0).standard_normal((64, int(model.embed_dim))).astype(np.float32)
    )
    kinds = args.kinds.split(",")
    samples: list[tuple[int, str, float]] = []
    times: dict[str, list[float]] = {k: [] for k in kinds}
    warm = max(1, args.queries // 10)
    start_rss = rss_mb()
    for i in range(args.queries):
        kind = kinds[i % len(kinds)]
        query = queries[i % len(queries)]
        t0 = time.perf_counter()
        if kind == "search":
            rec.store.search("music", vectors[i % len(vectors)], k=5)
            rec.store.search("video", vectors[(i + 1) % len(vectors)], k=5)
        elif kind == "recommend":
            rec.recommend_music(query, k=5)
        else:
            rec.find_videos(query, k=5)
        times[kind].append(time.perf_counter() - t0)
        if i % args.sample_every == 0 or i == args.queries - 1:
            samples.append((i, kind, rss_mb()))
    rec.close()
    after_warm = [s for s in samples if s[0] >= warm]
    x = np.array([s[0] for s in after_warm], dtype=np.float64)
    y = np.array([s[2] for s in after_warm], dtype=np.float64)
    slope_kb = float(np.polyfit(x, y, 1)[0] * 1024) if len(x) > 2 else float("nan")
    return {
        "queries": args.queries,
        "kinds": kinds,
        "rss_start": start_rss,
        "rss_after_warmup": float(y[0]),
        "rss_end": float(y[-1]),
        "growth_mb": float(y[-1] - y[0]),
        "slope_kb_per_query": slope_kb,
        "ms_per_query": {k: 1000 * float(np.median(v)) for k, v in times.items() if v},
        "peak_rss": peak_rss_mb(),
    }


def run_index(args: argparse.Namespace) -> dict:
    """Child process: `crossmodal index --music` over ``args.files`` generated tracks."""
    import torch

    from crossmodal.apps.cli import main

    torch.set_num_threads(1)
    work = Path(args.work)
    files = int(args.files)
    _music_files(work / "music", files, args.codec)
    model = _model(work)
    start = time.perf_counter()
    code = main(
        [
            "-q",
            "index",
            "--checkpoint",
            str(model),
            "--music",
            str(work / "music"),
            "--out",
            str(work / "index"),
            "--device",
            "cpu",
        ]
    )
    return {
        "files": files,
        "codec": args.codec,
        "exit_code": code,
        "seconds": time.perf_counter() - start,
        "peak_rss": peak_rss_mb(),
        "rss_end": rss_mb(),
    }


def _child(stage: str, **options: object) -> dict:
    with tempfile.TemporaryDirectory(prefix="soak-") as work:
        argv = [sys.executable, __file__, "--stage", stage, "--work", work]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        out = subprocess.run(argv, check=False, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"{stage} stage failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1,500 queries; index 50 and 200 files"
    )
    parser.add_argument("--queries", type=int, help="queries in the mixed run (default 10,000)")
    parser.add_argument("--files", help="comma-separated library sizes for the index part")
    parser.add_argument("--sample-every", type=int, default=50)
    parser.add_argument("--kinds", default="search,recommend,find-video")
    parser.add_argument(
        "--codecs", default="wav,aac", help="music file formats for the index part (wav, aac)"
    )
    parser.add_argument("--codec", default="wav", help=argparse.SUPPRESS)
    parser.add_argument("--skip-queries", action="store_true", help="only the index part")
    parser.add_argument("--stage", choices=("queries", "index"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "queries":
        print(json.dumps(run_queries(args)))
        return
    if args.stage == "index":
        print(json.dumps(run_index(args)))
        return

    queries = args.queries or (1500 if args.quick else 10_000)
    sizes = [
        int(s) for s in (args.files or ("50,200" if args.quick else "100,400,1600")).split(",")
    ]
    load = os.getloadavg()
    lines = [
        "# Soak benchmark (bench/soak.py)",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} at "
        f"start; python {platform.python_version()}. "
        "Audio path: PyAV streaming (crossmodal.data.audio).",
        "",
        f"## {queries} mixed queries in one process, then each kind alone "
        f"({max(300, queries // 3)} queries; 10,000 of `search`) (RSS in MiB; warm-up: first 10 %)",
        "",
        "| queries | kinds | RSS after warm-up | RSS at end | growth (MB) | slope (KB/query) | "
        "growth extrapolated to 10k (MB) | median ms/query |",
        "|---|---|---|---|---|---|---|---|",
    ]
    runs = [args.kinds] + ([k for k in args.kinds.split(",")] if "," in args.kinds else [])
    for kinds in [] if args.skip_queries else runs:
        n = queries if kinds == args.kinds else max(300, queries // 3)
        if kinds == "search":  # the store alone is cheap: always the full 10,000
            n = max(n, 10_000)
        r = _child("queries", queries=n, kinds=kinds, sample_every=args.sample_every)
        ms = ", ".join(f"{k} {v:.0f}" for k, v in r["ms_per_query"].items())
        lines.append(
            f"| {n} | {kinds} | {r['rss_after_warmup']:.1f} | {r['rss_end']:.1f} | "
            f"{r['growth_mb']:+.1f} | {r['slope_kb_per_query']:+.2f} | "
            f"{r['slope_kb_per_query'] * 10_000 / 1024:+.1f} | {ms} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "## `crossmodal index --music` over N generated 6-s tracks (fresh process each)",
        "",
        "| format | files | exit code | seconds | peak RSS (MiB) | peak RSS per extra file (KB) |",
        "|---|---|---|---|---|---|",
    ]
    for codec in args.codecs.split(","):
        first = None
        for n in sizes:
            r = _child("index", files=n, codec=codec)
            per_file = (
                ""
                if first is None
                else f"{(r['peak_rss'] - first['peak_rss']) * 1024 / (n - first['files']):+.1f}"
            )
            first = first or r
            lines.append(
                f"| {codec} | {n} | {r['exit_code']} | {r['seconds']:.1f} | "
                f"{r['peak_rss']:.0f} | {per_file} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
