"""Subprocess side of the atomicity and concurrency tests (run as a script, not collected).

Modes:
  kill-sweep OUT        build OUT/base (version 1), then run the same update on copies of
                        it, each in a forked child that SIGKILLs itself at the N-th
                        profiler event of the retrieval package (begin_update → add_item
                        → commit); writes OUT/sweep.json describing every case.
  writer ROOT N READY…  publish N generations (each replaces the whole library) once the
                        READY files of the readers exist.
  reader ROOT READY DONE RESULT
                        refresh + search in a loop until DONE exists, checking that every
                        answer comes from one complete generation; writes RESULT (JSON).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import faiss
import numpy as np

import crossmodal.fileio
import crossmodal.retrieval
from crossmodal.retrieval import IndexParams, IndexStore, ItemMeta

faiss.omp_set_num_threads(1)

DIM = 16
FP = "model-A"
PACKAGE_DIR = os.path.dirname(crossmodal.retrieval.__file__)
# The store writes its files through crossmodal.fileio; its events count too.
FILEIO = crossmodal.fileio.__file__
# Small enough that the sweep's update converts the music index from flat to HNSW.
PARAMS = IndexParams(flat_max=120, hnsw_m=8)


def vectors(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def windows(n: int) -> list[tuple[float, float]]:
    return [(2.0 * w, 2.0 * w + 2.0) for w in range(n)]


def make_base(root: Path) -> None:
    """Version 1: 20 music items × 5 windows and 2 videos (used by the test too)."""
    with IndexStore(root).begin_update(FP, DIM, params=PARAMS) as update:
        for i in range(20):
            update.add_item(
                "music", f"m{i:02d}.wav", ItemMeta(10, 1.0, "sha256:a"), windows(5), vectors(i, 5)
            )
        for i in range(2):
            update.add_item(
                "video", f"v{i}.mp4", ItemMeta(10, 1.0, "sha256:a"), windows(3), vectors(100 + i, 3)
            )


def sweep_update(root: Path) -> None:
    """Version 2: 10 new music items, one changed, two removed, one new video."""
    with IndexStore(root).begin_update(FP, DIM) as update:
        for i in range(20, 30):
            update.add_item(
                "music", f"m{i:02d}.wav", ItemMeta(10, 1.0, "sha256:a"), windows(5), vectors(i, 5)
            )
        update.add_item(
            "music", "m03.wav", ItemMeta(11, 2.0, "sha256:b"), windows(2), vectors(303, 2)
        )
        update.remove_item("m05.wav")
        update.remove_item("m06.wav")
        update.add_item(
            "video", "v9.mp4", ItemMeta(10, 1.0, "sha256:a"), windows(4), vectors(109, 4)
        )


def _profiled(target: Path, kill_at: int | None, trace: list[tuple[str, str]] | None) -> None:
    """Run :func:`sweep_update` on ``target`` counting package events; die at ``kill_at``."""
    count = 0

    def profile(frame, event, arg):  # type: ignore[no-untyped-def]
        nonlocal count
        filename = frame.f_code.co_filename
        if not (filename.startswith(PACKAGE_DIR) or filename == FILEIO):
            return
        count += 1
        if trace is not None:
            name = getattr(arg, "__name__", "") if event.startswith("c_") else frame.f_code.co_name
            trace.append((event, name))
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.setprofile(profile)
    try:
        sweep_update(target)
    finally:
        sys.setprofile(None)


def _in_child(fn, *args) -> int:  # type: ignore[no-untyped-def]
    """Run ``fn`` in a forked child; returns the signal that killed it (0 if it exited)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn(*args)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    if os.WEXITSTATUS(status) != 0:
        raise RuntimeError(f"child exited with {os.WEXITSTATUS(status)}")
    return 0


def kill_sweep(out: Path) -> None:
    # Everything that touches faiss runs in forked children, so this process never starts
    # OpenMP threads that a fork would leave in an undefined state.
    base = out / "base"
    _in_child(make_base, base)
    trace_file = out / "trace.json"

    def traced() -> None:
        trace: list[tuple[str, str]] = []
        target = out / "complete"
        shutil.copytree(base, target)
        _profiled(target, None, trace)
        trace_file.write_text(json.dumps(trace))

    _in_child(traced)
    trace = json.loads(trace_file.read_text())
    total = len(trace)
    replaces = [
        i + 1 for i, (event, name) in enumerate(trace) if name == "replace" and event == "c_call"
    ]
    publish = replaces[-1]  # 1-based event number of the os.replace of CURRENT
    points = set(np.linspace(1, total, 24).astype(int).tolist())
    points |= {p for p in range(publish - 4, publish + 6) if 1 <= p <= total}
    cases = []
    for n, kill_at in enumerate(sorted(points)):
        target = out / f"case{n:03d}"
        shutil.copytree(base, target)
        signal_number = _in_child(_profiled, target, kill_at, None)
        cases.append(
            {
                "dir": target.name,
                "kill_at": kill_at,
                "event": trace[kill_at - 1],
                "killed": signal_number == signal.SIGKILL,
            }
        )
    (out / "sweep.json").write_text(
        json.dumps({"total": total, "publish": publish, "cases": cases})
    )


def writer(root: Path, generations: int, ready: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while not all(p.exists() for p in ready):
        if time.monotonic() > deadline:
            raise TimeoutError("readers never became ready")
        time.sleep(0.01)
    for g in range(1, generations + 1):
        with IndexStore(root).begin_update(FP, DIM) as update:
            update.remove_missing([])
            for i in range(20):
                update.add_item(
                    "music",
                    f"g{g:02d}_{i:02d}.wav",
                    ItemMeta(1, 1.0, "x"),
                    windows(3),
                    vectors(g * 100 + i, 3),
                )
        time.sleep(0.05)


def reader(root: Path, ready: Path, done: Path, result: Path) -> None:
    store = IndexStore.open(root, fingerprint=FP)
    rng = np.random.default_rng(os.getpid())
    seen: set[str] = set()
    searches = 0
    ready.touch()
    while True:
        finished = done.exists()
        store.refresh()
        hits = store.search("music", rng.standard_normal((4, DIM)), k=5)
        generations = {h.item.path[:3] for row in hits for h in row}
        info = store.info()
        if len(generations) != 1:
            raise RuntimeError(f"mixed generations in one answer: {generations}")
        if not all(len(row) == 5 for row in hits):
            raise RuntimeError(f"short answer: {[len(row) for row in hits]}")
        if (info.items["music"], info.windows["music"]) != (20, 60):
            raise RuntimeError(f"incomplete version: {info}")
        seen.add(store.snapshot.version)
        searches += 1
        if finished:
            break
    result.write_text(
        json.dumps({"versions": sorted(seen), "searches": searches, "last": store.snapshot.version})
    )


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "kill-sweep":
        kill_sweep(Path(argv[1]))
    elif mode == "writer":
        writer(Path(argv[1]), int(argv[2]), [Path(p) for p in argv[3:]])
    elif mode == "reader":
        reader(Path(argv[1]), Path(argv[2]), Path(argv[3]), Path(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
