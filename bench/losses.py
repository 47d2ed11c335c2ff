"""Forward+backward time and peak memory of crossmodal's losses vs pytorch-metric-learning.

Cross-modal inputs on CPU: video and music embeddings (B × D, float32), labels with 4
items per class (``arange(B) // 4``), so every query has 4 positives among the music rows.
Pairwise losses are called ``loss(video, labels, ref_emb=music, ref_labels=labels)``
(PML gets a distinct ``ref_labels`` tensor, see the PML identity trap); proxy losses
classify both modalities against shared class proxies (B/4 classes) and average.

Per case, on the same inputs:

* ``ours``  — ``crossmodal.losses``;
* ``pml``   — pytorch-metric-learning at matching hyper-parameters (PML's NPairsLoss has
  no ``ref_emb``: it gets the concatenated batch, which is the same pairs' value);
* ``floor`` — the least any loss of the family must do: L2-normalise, one similarity
  matmul (B × B for pairwise losses; 2B × C against the proxies), and the backward.

Ours and PML run in separate worker subprocesses; each times its implementation
alternately with the floor, so the ratios hold under the load of other jobs sharing the
CPUs (PML / ours compares the two floor-relative times). Peak memory is the resident set size
(RSS) high-water mark above the RSS before the case (``/proc/self/clear_refs`` resets the
mark between cases; tracemalloc does not see torch's allocations). PML runs under an
address-space cap (``RLIMIT_AS``, default 6 GiB above the process's size after imports)
and a per-case timeout, and is reported as "OOM > cap" or "timeout" instead of dying.
Times are the median of several repeats (other jobs share the CPUs), with torch limited
to ``--threads`` threads in every subprocess.

    python bench/losses.py            # B ∈ {256, 1024, 4096}
    python bench/losses.py --quick    # B ∈ {256, 1024}, fewer repeats
    python bench/losses.py --quick --no-pml --baseline ../main --losses info_nce circle

``--baseline DIR`` also times ``crossmodal.losses`` of another checkout (e.g. ``main``)
in the same worker process, alternating with ours and the floor run by run: the change's
effect on "ours / floor" without the drift between runs of a shared machine.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "losses.md"
DIM = 256
K_PER_CLASS = 4

PAIRWISE = [
    "info_nce",
    "npair",
    "contrastive",
    "triplet_margin",
    "multi_similarity",
    "circle",
    "lifted_structure",
    "supcon",
]
PROXY = ["arcface", "cosface", "sphereface", "large_margin_softmax", "normface", "proxy_anchor"]
OURS_ONLY = ["l2_softmax", "am_softmax", "proxy_circle"]
# Pairwise losses PML lacks (it has Smooth-AP, but only unimodal: no ref_emb).
OURS_ONLY_PAIRWISE = ["siglip", "hard_negative_nce", "smooth_ap"]

# Hyper-parameters shared by ours and PML (PML's defaults where the two agree).
OURS_KWARGS: dict[str, dict] = {
    "info_nce": {"temperature": 0.07, "learnable": False},
    "npair": {"reg_weight": 0.0, "normalize": True},
    "contrastive": {"pos_margin": 0.0, "neg_margin": 1.0, "power": 1},
    "triplet_margin": {"margin": 0.05},
    "multi_similarity": {"alpha": 2.0, "beta": 50.0, "base": 0.5},
    "circle": {"m": 0.4, "gamma": 80.0},
    "lifted_structure": {"neg_margin": 1.0, "pos_margin": 0.0},
    "arcface": {"margin": math.radians(28.6), "scale": 64.0},  # PML takes degrees
    "cosface": {"margin": 0.35, "scale": 64.0},
    "sphereface": {"margin": 4},
    "large_margin_softmax": {"margin": 4},
    "normface": {"scale": 20.0},
    "proxy_anchor": {"alpha": 32.0, "delta": 0.1},
}
PML_CLASSES = {
    "info_nce": ("NTXentLoss", {"temperature": 0.07}),
    "npair": ("NPairsLoss", {}),
    "contrastive": ("ContrastiveLoss", {"pos_margin": 0.0, "neg_margin": 1.0}),
    "triplet_margin": ("TripletMarginLoss", {"margin": 0.05}),
    "multi_similarity": ("MultiSimilarityLoss", {"alpha": 2, "beta": 50, "base": 0.5}),
    "circle": ("CircleLoss", {"m": 0.4, "gamma": 80}),
    "lifted_structure": ("LiftedStructureLoss", {"neg_margin": 1, "pos_margin": 0}),
    "arcface": ("ArcFaceLoss", {"margin": 28.6, "scale": 64}),
    "cosface": ("CosFaceLoss", {"margin": 0.35, "scale": 64}),
    "sphereface": ("SphereFaceLoss", {"margin": 4, "scale": 1}),
    "large_margin_softmax": ("LargeMarginSoftmaxLoss", {"margin": 4, "scale": 1}),
    "normface": ("NormalizedSoftmaxLoss", {"temperature": 0.05}),
    "supcon": ("SupConLoss", {"temperature": 0.1}),
    "proxy_anchor": ("ProxyAnchorLoss", {"alpha": 32, "margin": 0.1}),
}


# ------------------------------------------------------------------ worker side


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Return freed heap pages to the OS, then restart the RSS high-water mark."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout


def load_baseline(checkout: str):
    """``crossmodal.losses`` of another checkout, imported before ours: its modules are
    then dropped from ``sys.modules`` so that ``import crossmodal`` finds ours, while
    the returned module keeps working on its own (its functions hold their globals)."""
    import importlib

    sys.path.insert(0, checkout)
    try:
        module = importlib.import_module("crossmodal.losses")
    finally:
        sys.path.remove(checkout)
    if not module.__file__.startswith(checkout):
        raise RuntimeError(f"crossmodal.losses came from {module.__file__}, not {checkout}")
    for name in [m for m in sys.modules if m == "crossmodal" or m.startswith("crossmodal.")]:
        del sys.modules[name]
    return module


def make_step(impl: str, name: str, batch: int, inputs, baseline=None):
    """A closure running one forward+backward of ``name`` under ``impl`` ("base": the
    ``baseline`` module's losses)."""
    import torch
    import torch.nn.functional as F

    video, music, labels = inputs
    proxy = name in PROXY or name in OURS_ONLY or name == "proxy"
    classes = batch // K_PER_CLASS
    if impl == "floor":
        if proxy:
            weight = torch.randn(classes, DIM, requires_grad=True)

            def step():
                both = F.normalize(torch.cat([video, music]), dim=1)
                (both @ F.normalize(weight, dim=1).T).sum().backward()
        else:

            def step():
                (F.normalize(video, dim=1) @ F.normalize(music, dim=1).T).sum().backward()

        return step
    if impl in ("ours", "base"):
        import crossmodal.losses

        module = baseline if impl == "base" else crossmodal.losses
        SymmetricLoss, create_loss = module.SymmetricLoss, module.create_loss
        kwargs = dict(OURS_KWARGS.get(name, {}))
        if proxy:
            kwargs.update(num_classes=classes, embedding_dim=DIM)
            # SymmetricLoss by hand: a baseline checkout may predate create_loss's wrappers.
            loss = SymmetricLoss(create_loss(name, **kwargs))
        else:
            loss = create_loss(name, **kwargs)

        def step():
            loss(video, labels, music, labels).backward()

        return step
    from pytorch_metric_learning import losses as pml_losses

    cls_name, kwargs = PML_CLASSES[name]
    cls = getattr(pml_losses, cls_name)
    ref_labels = labels.clone()  # a distinct object: PML drops positives when identical
    if proxy:
        pml = cls(num_classes=classes, embedding_size=DIM, **kwargs)

        def step():
            (0.5 * (pml(video, labels) + pml(music, ref_labels))).backward()
    elif name == "npair":
        pml = cls(**kwargs)
        both_labels = torch.cat([labels, ref_labels])

        def step():
            pml(torch.cat([video, music]), both_labels).backward()
    else:
        pml = cls(**kwargs)

        def step():
            pml(video, labels, ref_emb=music, ref_labels=ref_labels).backward()

    return step


def run_case(
    impl: str, name: str, batch: int, repeats: int, budget_s: float, baseline=None, clock="wall"
) -> dict:
    """Peak memory of one step, then ``impl``, the floor (and the ``baseline``
    module's losses) timed alternately, by ``clock``: "wall" (``perf_counter``) or "cpu"
    (this thread's CPU time: with one torch thread the work runs on the calling thread,
    and time spent waiting for a core on a shared machine is not counted)."""
    now = time.thread_time if clock == "cpu" else time.perf_counter
    import torch

    gen = torch.Generator().manual_seed(0)
    video = torch.randn(batch, DIM, generator=gen, requires_grad=True)
    music = torch.randn(batch, DIM, generator=gen, requires_grad=True)
    labels = torch.arange(batch) // K_PER_CLASS
    step = make_step(impl, name, batch, (video, music, labels))
    family = "proxy" if name in PROXY or name in OURS_ONLY else "pairwise"
    floor = make_step("floor", family, batch, (video, music, labels))
    reset_peak()
    before = rss_kib("VmRSS")
    start = now()
    step()  # warm-up; its high-water mark is the case's peak memory
    first = now() - start
    peak = rss_kib("VmHWM") - before
    floor()
    runs = [(floor, []), (step, [])]
    if baseline is not None:
        base = make_step("base", name, batch, (video, music, labels), baseline)
        base()
        runs.append((base, []))
    # Alternating runs: load from other jobs hits both sides of the ratio alike.
    # Fast cases get more runs (at least `repeats`, up to 30) for a stable median.
    count = max(1, min(max(repeats, 30), int(budget_s / max(first, 1e-6))))
    for _ in range(count):
        for fn, bucket in runs:
            video.grad = music.grad = None
            start = now()
            fn()
            bucket.append(now() - start)
    floor_median, median = (statistics.median(bucket) for _, bucket in runs[:2])
    result = {
        "median_s": median,
        "floor_s": floor_median,
        "over_floor": median / floor_median,
        "runs": count,
        "peak_mib": max(peak, 0) / 1024,
    }
    if baseline is not None:
        result["base_over_floor"] = statistics.median(runs[2][1]) / floor_median
    return result


def worker(spec: dict) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
    baseline = load_baseline(spec["baseline"]) if spec.get("baseline") else None
    import crossmodal.losses  # noqa: F401 - import cost outside the timed region

    if spec["impl"] == "pml":
        import pytorch_metric_learning.losses  # noqa: F401

        cap = rss_kib("VmSize") * 1024 + int(spec["cap_gib"] * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.signal(signal.SIGALRM, _alarm)
    for name in spec["losses"]:
        print(json.dumps({"start": name}), flush=True)
        # A timeout can interrupt a step inside a no-grad region and leave grad mode off,
        # which would fail every later case of this worker.
        torch.set_grad_enabled(True)
        signal.alarm(int(spec["timeout_s"]))
        try:
            result = run_case(
                spec["impl"],
                name,
                spec["batch"],
                spec["repeats"],
                spec["budget_s"],
                baseline,
                spec["clock"],
            )
            result["status"] = "ok"
        except CaseTimeout:
            result = {"status": "timeout"}
        except (MemoryError, RuntimeError) as exc:
            text = str(exc)
            oom = isinstance(exc, MemoryError) or "alloc" in text or "memory" in text
            result = {"status": "oom" if oom else f"error: {text[:80]}"}
        finally:
            signal.alarm(0)
        result.update(loss=name, impl=spec["impl"], batch=spec["batch"])
        print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ parent side


@dataclass
class Options:
    sizes: list[int]
    repeats: int
    threads: int
    cap_gib: float
    timeout_s: float
    budget_s: float
    baseline: Path | None = None
    rounds: int = 1
    clock: str = "wall"


def run_group(impl: str, batch: int, names: list[str], opts: Options) -> dict[str, dict]:
    """Run ``names`` in worker subprocesses; restart after a crash, marking that case."""
    results: dict[str, dict] = {}
    pending = list(names)
    while pending:
        spec = {
            "impl": impl,
            "batch": batch,
            "losses": pending,
            "repeats": opts.repeats,
            "threads": opts.threads,
            "cap_gib": opts.cap_gib,
            "timeout_s": opts.timeout_s,
            "budget_s": opts.budget_s,
            "baseline": str(opts.baseline) if impl == "ours" and opts.baseline else None,
            "clock": opts.clock,
        }
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(opts.threads)}
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        current = None
        deadline = time.monotonic() + (opts.timeout_s + 60) * len(pending)
        assert proc.stdout is not None
        for line in proc.stdout:
            record = json.loads(line)
            if "start" in record:
                current = record["start"]
                continue
            results[record["loss"]] = record
            print(f"  {impl:5s} B={batch:5d} {record['loss']:22s} {fmt_time(record)}", flush=True)
            current = None
            if time.monotonic() > deadline:
                proc.kill()
                break
        proc.wait()
        done = [n for n in pending if n in results]
        if current is not None and current not in results:
            status = "oom" if proc.returncode in (-9, 137) else "crashed"
            results[current] = {"status": status, "loss": current}
            print(f"  {impl:5s} B={batch:5d} {current:22s} {status}", flush=True)
            done.append(current)
        pending = [n for n in pending if n not in done]
        if pending and not done:
            for name in pending:
                results[name] = {"status": "crashed", "loss": name}
            break
    return results


def median_record(records: list[dict]) -> dict:
    """The record with the median ratio to the floor among the successful ones (the
    first record when none succeeded)."""
    ok = sorted((r for r in records if r.get("status") == "ok"), key=lambda r: r["over_floor"])
    return ok[(len(ok) - 1) // 2] if ok else records[0]


def fmt_time(record: dict | None) -> str:
    if record is None:
        return "—"
    if record.get("status") != "ok":
        return {"oom": "OOM > cap", "timeout": "timeout"}.get(record["status"], record["status"])
    return f"{record['median_s'] * 1e3:.1f} ms"


def fmt_mem(record: dict | None) -> str:
    if record is None or record.get("status") != "ok":
        return "—"
    return f"{record['peak_mib']:.0f}"


def table(results: dict, opts: Options) -> str:
    everything = PAIRWISE + OURS_ONLY_PAIRWISE + PROXY + OURS_ONLY
    names = [n for n in everything if any(k[2] == n for k in results)]
    base = opts.baseline is not None
    lines = [
        "| loss | B | floor | ours | ours / floor | "
        + ("baseline / floor | " if base else "")
        + "PML | PML / floor | PML / ours | ours peak MiB | PML peak MiB |",
        "|---|---:|---:|---:|---:|" + ("---:|" if base else "") + "---:|---:|---:|---:|---:|",
    ]
    for name in names:
        for batch in opts.sizes:
            ours = results.get(("ours", batch, name))
            pml = results.get(("pml", batch, name))
            ours_ok = ours is not None and ours.get("status") == "ok"
            pml_ok = pml is not None and pml.get("status") == "ok"
            if ours_ok and pml_ok:
                # Each side over the floor timed alongside it, so load drift between the
                # two processes cancels.
                speedup = pml["over_floor"] / ours["over_floor"]
                speedup_s = f"{speedup:.0f}×" if speedup >= 10 else f"{speedup:.1f}×"
            elif pml and pml.get("status") in ("oom", "timeout", "crashed"):
                speedup_s = "PML failed"
            else:
                speedup_s = "—"
            floor_s = f"{ours['floor_s'] * 1e3:.1f} ms" if ours_ok else "—"
            over = f"{ours['over_floor']:.2f}×" if ours_ok else "—"
            pml_over = f"{pml['over_floor']:.1f}×" if pml_ok else "—"
            base_col = ""
            if base:
                base_col = f"{ours['base_over_floor']:.2f}× | " if ours_ok else "— | "  # type: ignore[index]
            lines.append(
                f"| {name} | {batch} | {floor_s} | {fmt_time(ours)} | {over} | {base_col}"
                f"{fmt_time(pml)} | {pml_over} | {speedup_s} | {fmt_mem(ours)} | {fmt_mem(pml)} |"
            )
    return "\n".join(lines)


def header(opts: Options, seconds: float) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    try:
        from importlib.metadata import version

        pml_version = version("pytorch-metric-learning")
    except Exception:
        pml_version = "not installed"
    return (
        "# Loss benchmark: crossmodal vs pytorch-metric-learning\n\n"
        f"Cross-modal, CPU ({cpu}, torch {torch.__version__}, {opts.threads} thread(s), "
        f"PML {pml_version}), D={DIM}, {K_PER_CLASS} items per class, forward+backward, "
        + ("wall time" if opts.clock == "wall" else "CPU time of the timing thread")
        + f", median of {opts.repeats}-30 runs after a warm-up (fewer when one run exceeds the "
        "time budget), alternating with the floor (normalise + one similarity matmul + "
        "backward: B×B pairwise, 2B×C proxies) in the same process; the floor column is "
        "the one timed next to ours, and PML / ours compares the two floor-relative times "
        "(ours and PML run in different processes, minutes apart). PML capped "
        f"at {opts.cap_gib:g} GiB address space and {opts.timeout_s:g} s per case. Peak = "
        "RSS high-water mark of the first step above the RSS before it. "
        + (
            f"Each case run in {opts.rounds} interleaved rounds; the table keeps the round "
            "with the median ratio to the floor. "
            if opts.rounds > 1
            else ""
        )
        + (
            f"Baseline / floor: crossmodal.losses of {opts.baseline} timed in the same "
            "process, alternating run by run with ours and the floor. "
            if opts.baseline
            else ""
        )
        + f"Whole run: {seconds:.0f} s.\n\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="B ∈ {256, 1024}, 3 repeats")
    parser.add_argument("--sizes", type=int, nargs="+", help="batch sizes (default 256 1024 4096)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case (5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (1)")
    parser.add_argument("--cap-gib", type=float, default=6.0, help="PML address-space cap (6)")
    parser.add_argument("--timeout", type=float, default=60.0, help="PML seconds per case (60)")
    parser.add_argument("--losses", nargs="+", help="only these losses (default: all)")
    parser.add_argument("--no-pml", action="store_true", help="skip pytorch-metric-learning")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or the thread's CPU time (robust on a shared machine; --threads 1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every group this many times, interleaved, and keep each case's median "
        "ratio to the floor (1)",
    )
    parser.add_argument(
        "--baseline", type=Path, help="also time crossmodal.losses of this checkout (e.g. main)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"markdown file ({RESULTS})")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    opts = Options(
        sizes=args.sizes or ([256, 1024] if args.quick else [256, 1024, 4096]),
        repeats=args.repeats or (3 if args.quick else 5),
        threads=args.threads,
        cap_gib=args.cap_gib,
        timeout_s=args.timeout,
        budget_s=4.0 if args.quick else 8.0,
        baseline=args.baseline.resolve() if args.baseline else None,
        rounds=args.rounds,
        clock=args.clock,
    )
    if opts.clock == "cpu" and opts.threads != 1:
        parser.error("--clock cpu measures the calling thread: use it with --threads 1")
    groups = [("ours", PAIRWISE + OURS_ONLY_PAIRWISE + PROXY + OURS_ONLY)]
    if not args.no_pml:
        groups.append(("pml", PAIRWISE + PROXY))
    started = time.monotonic()
    rounds: dict[tuple[str, int, str], list[dict]] = {}
    for batch in opts.sizes:
        # Rounds interleave the implementations, so slow spells of a shared machine hit
        # each of them alike.
        for _ in range(opts.rounds):
            for impl, names in groups:
                names = [n for n in names if not args.losses or n in args.losses]
                if not names:
                    continue
                for name, record in run_group(impl, batch, names, opts).items():
                    rounds.setdefault((impl, batch, name), []).append(record)
    results = {key: median_record(records) for key, records in rounds.items()}
    text = header(opts, time.monotonic() - started) + table(results, opts) + "\n"
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
