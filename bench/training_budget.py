"""Acceptance table of the training budget: default (convergence) runs against runs given
about 4× their steps, and the non-learned sync baseline, on the test split.

    python bench/training_budget.py --row NAME MANIFEST DEFAULT_RUN LONG_RUN [--row …]
        [--blend ALPHA] [--out bench/results/training_budget.md]

Each row names a corpus (its manifest), the run folder of a default ``crossmodal train``
and that of a run given about 4× the steps (``--epochs``); a LONG_RUN of ``-`` leaves
those columns empty (not run). The runs themselves are made with the CLI, as a user
would (see docs/training.md for the commands). For every row this script embeds the test
split with each run's ``model.pt`` (scored as the model scores: gated by its sync gate at
its default blend, or at ``--blend``) and scores the sync baseline on the same clips, then
checks the acceptance rule: the default reaches ≥ 0.95× the long run's R@10 and is within
0.05 of its R@1 (both directions), and beats the baseline both ways (a higher mAP, and
no lower R@1 or R@10: :func:`~crossmodal.evaluation.baseline.behind_baseline`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

from crossmodal.evaluation.baseline import behind_baseline, sync_baseline
from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings
from crossmodal.inference import embed_dataset, load_trained_model, manifest_dataset

DIRECTIONS = (("video_to_music", "v→m"), ("music_to_video", "m→v"))


def split_report(
    run_dir: Path, manifest: Path, cache: Path | None, split: str, blend: float | None = None
) -> tuple[dict, Any]:
    """The retrieval report of ``run_dir``'s ``model.pt`` on ``split`` (a carved val split
    is read from the run folder) at ``blend`` (None: the model's default), and the
    dataset it embedded."""
    model = load_trained_model(run_dir / "model.pt")
    dataset = manifest_dataset(model, manifest, split, cache=cache, run_dir=run_dir)
    embedded = embed_dataset(model, dataset, batch_size=64)
    # Scored as the model scores (gated by its sync gate when it has one).
    report = evaluate_embeddings(
        embedded.video,
        embedded.music,
        embedded.tracks,
        with_nmi=False,
        scorer=lambda q, g: model.layout.scores(q, g, blend),
    )
    return report, dataset


def run_facts(run_dir: Path) -> str:
    summary = json.loads((run_dir / "summary.json").read_text())
    return f"{summary['steps']} steps, {summary['train_seconds'] / 60:.1f} min"


def cells(report: dict) -> list[str]:
    return [f"{report[d][k]:.3f}" for d, _ in DIRECTIONS for k in ("R@1", "R@10")]


def accept(default: dict, long: dict | None, baseline: dict) -> str:
    notes = []
    if long is not None:
        for direction, short in DIRECTIONS:
            d, lg = default[direction], long[direction]
            if d["R@10"] < 0.95 * lg["R@10"]:
                notes.append(f"{short} R@10 {d['R@10']:.3f} < 0.95 × {lg['R@10']:.3f}")
            if d["R@1"] < lg["R@1"] - 0.05:
                notes.append(f"{short} R@1 {d['R@1']:.3f} < {lg['R@1']:.3f} − 0.05")
    notes += [f"behind baseline: {b}" for b in behind_baseline(default, baseline)]
    if not notes:
        return "yes" if long is not None else "yes (baseline only; no 4× run)"
    return "no: " + "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--row",
        nargs=4,
        action="append",
        required=True,
        metavar=("NAME", "MANIFEST", "DEFAULT_RUN", "LONG_RUN"),
    )
    parser.add_argument("--cache", type=Path, help="decoded-clip cache shared with training")
    parser.add_argument(
        "--blend",
        type=float,
        help="score two-part models at this blend (0: sync only; default: each model's own)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/training_budget.md"))
    args = parser.parse_args()
    header = (
        "| corpus | run | length | v→m R@1 | v→m R@10 | m→v R@1 | m→v R@10 | accepted |\n"
        "|---|---|---|---:|---:|---:|---:|---|"
    )
    lines = [header]
    for name, manifest, default_dir, long_dir in args.row:
        default, dataset = split_report(
            Path(default_dir), Path(manifest), args.cache, "test", args.blend
        )
        long = None
        if long_dir != "-":
            long, _ = split_report(Path(long_dir), Path(manifest), args.cache, "test", args.blend)
        baseline = sync_baseline(dataset.records)
        verdict = accept(default, long, baseline)
        lines.append(
            f"| {name} ({len(dataset)} test clips) | default | {run_facts(Path(default_dir))} | "
            + " | ".join(cells(default))
            + f" | {verdict} |"
        )
        if long is not None:
            lines.append(
                f"| | 4× steps | {run_facts(Path(long_dir))} | " + " | ".join(cells(long)) + " | |"
            )
        lines.append("| | sync baseline | no training | " + " | ".join(cells(baseline)) + " | |")
        print(lines[-1], flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    text = (
        "# Training budget: default vs 4× steps vs the sync baseline (test split)\n\n"
        f"Machine: {machine}, shared with other jobs while measured (times are wall "
        "clock under that load).\n\n" + "\n".join(lines) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
