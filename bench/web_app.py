"""Web app benchmark: upload → results, dub, server memory, concurrent queries.

    python bench/web_app.py [--clips 24] [--long 300] [--out bench/results/web_app.md]

A real ``crossmodal serve`` process on 127.0.0.1 (a free port) over an index of a
synthetic corpus built by the default model (``ModelConfig()``: the tiny towers). Each
time through the app is reported with its ratio to a floor timed in the same run: the
same work done in-process with the library (``Recommender.recommend_music``,
``dub_recommended``), so the ratio is the app's overhead (upload, HTTP, page). The load
loop is bounded (``--concurrent`` clients, ``--rounds`` each) and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from crossmodal.data.writer import write_media


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def noise_video(path: Path, seconds: float, seed: int = 0) -> Path:
    """A 112×112, 12 fps video of moving 8-px blocks with a tone (5 min ≈ 135 MB of
    frames in memory; blocks keep the file a realistic size, pixel noise would not)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, (round(seconds * 12), 14, 14, 3), dtype=np.uint8)
    frames = blocks.repeat(8, axis=1).repeat(8, axis=2)
    t = np.arange(round(seconds * 16000)) / 16000
    return write_media(path, frames, fps=12, audio=0.3 * np.sin(2 * np.pi * 440 * t))


def build_index(root: Path, clips: int) -> Path:
    import torch

    from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
    from crossmodal.model import CrossModalModel, ModelConfig
    from crossmodal.retrieval.indexer import Indexer, library_files

    manifest = generate_corpus(
        root / "corpus", SynthConfig(clips=clips, split=(1.0, 0.0, 0.0)), progress=False
    )
    torch.manual_seed(0)
    model = CrossModalModel.from_config(ModelConfig()).eval()
    Indexer(model, root / "index").index(
        {"music": library_files(manifest, "music"), "video": library_files(manifest, "video")}
    )
    return root / "index"


def upload(client: object, url: str, path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    with path.open("rb") as handle:
        answer = client.post(url + "/api/music", files={"file": (path.name, handle)})  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{path.name}: HTTP {answer.status_code}: {answer.text}")
    token = answer.text.split('data-token="', 1)[1].split('"', 1)[0]
    return elapsed, token


def main() -> None:
    import httpx
    import psutil

    from crossmodal.retrieval.dub import dub_recommended
    from crossmodal.retrieval.recommender import Recommender

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--long", type=float, default=300.0, help="long video, seconds")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bursts", type=int, default=3, help="load loops, RSS after each")
    parser.add_argument("--out", default="bench/results/web_app.md")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    t = time.perf_counter()
    index_dir = build_index(tmp, args.clips)
    print(f"index built in {time.perf_counter() - t:.1f} s", flush=True)
    videos = {
        "5 s": noise_video(tmp / "q5.mp4", 5.0),
        "30 s": noise_video(tmp / "q30.mp4", 30.0),
        f"{args.long / 60:g} min": noise_video(tmp / "qlong.mp4", args.long),
    }

    # Floors: the library in this process.
    rec = Recommender.load(index_dir)
    floors: dict[str, float] = {}
    dub_floors: dict[str, float] = {}
    for name, path in videos.items():
        t = time.perf_counter()
        matches = rec.recommend_music(path, k=5)
        floors[name] = time.perf_counter() - t
        t = time.perf_counter()
        dub_recommended(rec, path, tmp / f"floor-{path.stem}.mp4", matches=matches)
        dub_floors[name] = time.perf_counter() - t
        print(f"floor {name}: query {floors[name]:.2f} s, dub {dub_floors[name]:.2f} s", flush=True)
    rec.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    command = [sys.executable, "-m", "crossmodal", "-q", "serve", "--index", str(index_dir)]
    server = subprocess.Popen([*command, "--port", str(port), "--device", "cpu"], env=env)
    rows: list[str] = []
    try:
        client = httpx.Client(timeout=600)
        for _ in range(600):
            try:
                if client.get(url + "/library").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        process = psutil.Process(server.pid)
        rest_mb = process.memory_info().rss / 2**20

        for name, path in videos.items():
            elapsed, token = upload(client, url, path)
            t = time.perf_counter()
            answer = client.post(url + "/api/dub", data={"token": token, "rank": "1"})
            dub_s = time.perf_counter() - t
            assert answer.status_code == 200, answer.text
            rows.append(
                f"| {name} | {path.stat().st_size / 2**20:.1f} | {elapsed:.2f} | {floors[name]:.2f} "
                f"| {elapsed / floors[name]:.2f} | {dub_s:.2f} | {dub_floors[name]:.2f} "
                f"| {dub_s / dub_floors[name]:.2f} |"
            )
            print(rows[-1], flush=True)
        first_mb = process.memory_info().rss / 2**20

        for _ in range(args.queries):
            upload(client, url, videos["5 s"])
        after_mb = process.memory_info().rss / 2**20

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def one_client() -> None:
            with httpx.Client(timeout=600) as own:
                for _ in range(args.rounds):
                    try:
                        elapsed, _ = upload(own, url, videos["5 s"])
                    except (RuntimeError, httpx.HTTPError) as err:
                        with lock:
                            errors.append(str(err))
                        continue
                    with lock:
                        latencies.append(elapsed)

        burst_mb: list[float] = []
        walls: list[float] = []
        for _ in range(args.bursts):
            threads = [threading.Thread(target=one_client) for _ in range(args.concurrent)]
            t = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            walls.append(time.perf_counter() - t)
            burst_mb.append(process.memory_info().rss / 2**20)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)

    q = np.percentile(latencies, [50, 95]) if latencies else [float("nan")] * 2
    single = statistics.median([floors["5 s"]])
    text = f"""# Web app: upload → results, dub, memory, concurrency

`python bench/web_app.py --clips {args.clips} --long {args.long:g}` on {platform.machine()},
{os.cpu_count()} CPUs **shared by up to 8 engineers working at once** (numbers move with
their load; ratios to a floor timed in the same run move less). Default model
(`ModelConfig()`: tiny towers, 4-s windows at a 2-s hop), index of {args.clips} synthetic
clips, `crossmodal serve` in its own process on 127.0.0.1, `OMP_NUM_THREADS={env["OMP_NUM_THREADS"]}`.
Query videos: 112×112, 12 fps, H.264 + AAC.

## Upload → results, and dub

Through the app = from the start of the upload to the rendered results (upload, probe,
embedding, search, page). Floor = `Recommender.recommend_music` on the same file in one
process. Dub through the app = the dub button's request; floor = `dub_recommended` with
the same matches.

| video | MB | app s | floor s | app / floor | dub app s | dub floor s | dub app / floor |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

## Server memory (RSS)

| at rest (started, no query) | after the three videos above | after {args.queries} more 5-s queries | after each load burst |
|---|---|---|---|
| {rest_mb:.0f} MB | {first_mb:.0f} MB | {after_mb:.0f} MB | {" → ".join(f"{m:.0f}" for m in burst_mb)} MB |

## {args.bursts} bursts of {args.concurrent} concurrent clients × {args.rounds} queries (5-s video uploads)

Queries run one at a time in the server (one model on a shared CPU), so latency under
load is queueing: p95 ≈ clients × one query.

| requests | errors | p50 s | p95 s | wall s per burst | one query alone (floor) s |
|---|---|---|---|---|---|
| {len(latencies) + len(errors)} | {len(errors)} | {q[0]:.2f} | {q[1]:.2f} | {" / ".join(f"{w:.1f}" for w in walls)} | {single:.2f} |
"""
    if errors:
        text += "\nErrors:\n" + "\n".join(f"- {e}" for e in errors[:5]) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
