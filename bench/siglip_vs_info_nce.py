"""SigLIP's sigmoid loss against symmetric InfoNCE as the cross-modal objective, by batch size.

    OMP_NUM_THREADS=1 python bench/siglip_vs_info_nce.py CORPUS_DIR [--batches 16 64 256]
        [--epochs 40] [--seeds 0] [--out bench/results/siglip_vs_info_nce.md]

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

OBJECTIVES = ("info_nce", "siglip")


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
    loss = create_loss(objective, symmetric=True)
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", type=Path, help="folder made by `crossmodal synth`")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--epochs", type=int, default=40, help="passes over the train split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cache", type=Path, help="file keeping the decoded splits")
    parser.add_argument("--out", type=Path, default=Path("bench/results/siglip_vs_info_nce.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load(args.corpus, args.cache)
    n_train, n_test = len(data["train_video"]), len(data["test_video"])

    rows = []
    for batch in args.batches:
        for seed in args.seeds:
            for objective in OBJECTIVES:
                result = train_one(data, objective, batch, args.epochs, seed)
                result.update(batch=batch, seed=seed, objective=objective)
                result["load"] = os.getloadavg()[0]
                rows.append(result)
                print(result, flush=True)

    lines = [
        "# SigLIP vs InfoNCE as the cross-modal objective, by batch size",
        "",
        f"Corpus `{args.corpus}`: {n_train} train clips, test gallery of {n_test} "
        f"(chance R@1 {1 / n_test:.3f}, R@10 {10 / n_test:.3f}). Tiny towers of "
        "`bench/synth_learnability.py`, every clip its own label, both objectives symmetric "
        f"(`create_loss(name, symmetric=True)`, default parameters), {args.epochs} epochs "
        "each (same steps for both at a batch size), AdamW 2e-3, seeds "
        f"{' '.join(map(str, args.seeds))}. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with other jobs, one torch thread; the load average "
        "(1 min) at the end of each run is in the table, so seconds are pessimistic.",
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
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
