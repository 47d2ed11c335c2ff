"""SigLIP's sigmoid loss against symmetric InfoNCE as the cross-modal objective, by batch size.

    crossmodal synth CORPUS_DIR --clips 400 --split 280,20,100 --size 32 --seed 0
    OMP_NUM_THREADS=1 python bench/siglip_vs_info_nce.py CORPUS_DIR [--batches 16 64 256]
        [--epochs 40] [--seeds 0] [--objectives info_nce siglip siglip_prior]
        [--cache FILE] [--rows-from LOG ...] [--out bench/results/siglip_vs_info_nce.md]

Trains the tiny CPU towers of ``bench/synth_learnability.py`` (0.28 M parameters, whole
4 s windows) on the train split of a ``crossmodal synth`` corpus with each objective,
built through the loss registry (``create_loss("siglip", symmetric=True)``,
``create_loss("info_nce", symmetric=True)``; every clip its own label), and reports
instance-level retrieval on the test split, both directions. Both objectives get the
same budget at each batch size: ``--epochs`` passes over the train split (incomplete
last batches dropped), so the same number of optimiser steps and samples seen; a larger
batch gets fewer steps. AdamW 2e-3 (weight decay 1e-4 on the towers, none on the
losses' temperature and bias), one torch thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_learnability import MusicTower, VideoTower, evaluate, load_split

from crossmodal.fileio import atomic_write_text
from crossmodal.losses import create_loss

OBJECTIVES = ("info_nce", "siglip", "siglip_prior")


def build_objective(objective: str, batch: int) -> torch.nn.Module:
    """``siglip_prior``: SigLIP with its bias started at the prior log-odds of a positive
    pair at this batch size, ``−log(B − 1)`` (one positive among B references; the
    paper's −10 is this prior at its batch of 32k)."""
    if objective == "siglip_prior":
        return create_loss("siglip", symmetric=True, bias_init=-math.log(batch - 1))
    return create_loss(objective, symmetric=True)


def load(corpus: Path, cache: Path | None) -> dict[str, torch.Tensor]:
    """Both splits, decoded once; kept in ``cache`` (plain tensors) when given."""
    if cache is not None and cache.exists():
        return torch.load(cache, weights_only=True)
    manifest = corpus / "manifest.jsonl"
    train_video, train_music = load_split(manifest, "train", workers=1)
    test_video, test_music = load_split(manifest, "test", workers=1)
    data = {
        "train_video": train_video,
        "train_music": train_music,
        "test_video": test_video,
        "test_music": test_music,
    }
    if cache is not None:
        torch.save(data, cache)
    return data


def train_one(
    data: dict[str, torch.Tensor], objective: str, batch: int, epochs: int, seed: int
) -> dict:
    torch.manual_seed(seed)
    video_tower, music_tower = VideoTower(), MusicTower()
    loss = build_objective(objective, batch)
    optimiser = torch.optim.AdamW(
        [
            {"params": [*video_tower.parameters(), *music_tower.parameters()]},
            {"params": list(loss.parameters()), "weight_decay": 0.0},
        ],
        lr=2e-3,
        weight_decay=1e-4,
    )
    train_video, train_music = data["train_video"], data["train_music"]
    steps, tick = 0, time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(train_video))
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i : i + batch]
            v = video_tower(train_video[idx].float())
            a = music_tower(train_music[idx].float())
            value = loss(v, idx, a, idx)  # every clip is its own instance
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            steps += 1
    seconds = time.perf_counter() - tick
    metrics = evaluate(video_tower, music_tower, data["test_video"], data["test_music"])
    return {"steps": steps, "seconds": seconds, "loss": float(value.detach()), **metrics}


def render(
    rows: list[dict], corpus: Path, epochs: int, seeds: list[int], n_train: int, n_test: int
) -> str:
    """The markdown report: the mean over seeds per batch and objective, then every run."""
    lines = [
        "# SigLIP vs InfoNCE as the cross-modal objective, by batch size",
        "",
        f"Corpus `{corpus}`: {n_train} train clips, test gallery of {n_test} "
        f"(chance R@1 {1 / n_test:.3f}, R@10 {10 / n_test:.3f}). Tiny towers of "
        "`bench/synth_learnability.py`, every clip its own label, every objective symmetric "
        "(`create_loss(name, symmetric=True)`, default parameters; `siglip_prior` is SigLIP "
        f"with `bias_init=−log(B−1)`), {epochs} epochs each (the same steps for every "
        "objective at a batch size), AdamW 2e-3, seeds "
        f"{' '.join(map(str, seeds))}. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with other jobs, one torch thread; the load average "
        "(1 min) at the end of each run is in the table, so seconds are pessimistic.",
        "",
        f"Mean over {len(seeds)} seed(s):",
        "",
        "| batch | objective | steps | v→m R@1 | v→m R@10 | m→v R@1 | m→v R@10 |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for batch in sorted({r["batch"] for r in rows}):
        for objective in dict.fromkeys(r["objective"] for r in rows):
            runs = [r for r in rows if r["batch"] == batch and r["objective"] == objective]
            if not runs:
                continue
            mean = {
                (d, k): sum(r[d][k] for r in runs) / len(runs)
                for d in ("v2m", "m2v")
                for k in ("R@1", "R@10")
            }
            lines.append(
                f"| {batch} | {objective} | {runs[0]['steps']} | {mean['v2m', 'R@1']:.3f} | "
                f"{mean['v2m', 'R@10']:.3f} | {mean['m2v', 'R@1']:.3f} | "
                f"{mean['m2v', 'R@10']:.3f} |"
            )
    lines += [
        "",
        "Every run:",
        "",
        "| batch | objective | seed | steps | train s | v→m R@1 | v→m R@10 | m→v R@1 "
        "| m→v R@10 | load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        v2m, m2v = r["v2m"], r["m2v"]
        lines.append(
            f"| {r['batch']} | {r['objective']} | {r['seed']} | {r['steps']} | "
            f"{r['seconds']:.0f} | {v2m['R@1']:.3f} | {v2m['R@10']:.3f} | {m2v['R@1']:.3f} | "
            f"{m2v['R@10']:.3f} | {r['load']:.1f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", type=Path, help="folder made by `crossmodal synth`")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--epochs", type=int, default=40, help="passes over the train split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--objectives",
        nargs="+",
        default=list(OBJECTIVES[:2]),
        help="siglip_prior or any pairwise loss name (default: info_nce siglip)",
    )
    parser.add_argument(
        "--rows-from",
        type=Path,
        nargs="+",
        default=[],
        help="JSON-lines logs of earlier runs (this script's stdout) to report alongside",
    )
    parser.add_argument("--cache", type=Path, help="file keeping the decoded splits")
    parser.add_argument("--out", type=Path, default=Path("bench/results/siglip_vs_info_nce.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load(args.corpus, args.cache)
    n_train, n_test = len(data["train_video"]), len(data["test_video"])

    rows = [
        json.loads(line)
        for log in args.rows_from
        for line in log.read_text(encoding="utf-8").splitlines()
        if line.startswith("{")
    ]
    for batch in args.batches:
        for seed in args.seeds:
            for objective in args.objectives:
                result = train_one(data, objective, batch, args.epochs, seed)
                result.update(batch=batch, seed=seed, objective=objective)
                result["load"] = os.getloadavg()[0]
                rows.append(result)
                print(json.dumps(result), flush=True)  # one line per run: the raw log

    text = render(rows, args.corpus, args.epochs, args.seeds, n_train, n_test)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
