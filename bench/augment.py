"""Which training-time augmentations help: each alone against none, same corpus, same
step budget (``--epochs``), same seed; validation and test R@1 / R@10, both directions.

    python bench/augment.py --corpus NAME MANIFEST --run NAME AUGMENTATION RUN_DIR [--run …]
        [--corpus …] [--out bench/results/augment.md]

The runs are made with the CLI (``crossmodal train … --epochs N --data.augment.crop 0.2``;
the commands are in docs/training.md). Every run of a corpus is compared with that
corpus's ``none`` run. An augmentation *helps* on a corpus when its test R@1, averaged
over both directions, gains at least ``--margin`` (default 0.03) and its test R@10
average loses nothing; it is a default candidate only when it helps on every corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from training_budget import split_report

DIRECTIONS = ("video_to_music", "music_to_video")


def cells(report: dict) -> list[float]:
    return [report[d][k] for d in DIRECTIONS for k in ("R@1", "R@10")]


def mean_r(report: dict, k: str) -> float:
    return sum(report[d][k] for d in DIRECTIONS) / len(DIRECTIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs=2, action="append", required=True)
    parser.add_argument("--run", nargs=3, action="append", required=True)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--margin", type=float, default=0.03)
    parser.add_argument("--note", default="", help="machine state while the runs trained")
    parser.add_argument("--out", type=Path, default=Path("bench/results/augment.md"))
    args = parser.parse_args()
    manifests = {name: Path(path) for name, path in args.corpus}
    header = (
        "| corpus | augmentation | steps | val v→m R@1 | val v→m R@10 | val m→v R@1 "
        "| val m→v R@10 | test v→m R@1 | test v→m R@10 | test m→v R@1 | test m→v R@10 "
        "| Δ test R@1 | Δ test R@10 | helps |\n" + "|---|---|---:" + "|---:" * 10 + "|---|"
    )
    lines, verdicts = [header], {}
    for corpus, manifest in manifests.items():
        runs = [(aug, Path(d)) for c, aug, d in args.run if c == corpus]
        reports = {
            aug: (
                split_report(run, manifest, args.cache, "val")[0],
                split_report(run, manifest, args.cache, "test")[0],
                json.loads((run / "summary.json").read_text())["steps"],
            )
            for aug, run in runs
        }
        if "none" not in reports:
            raise SystemExit(f"corpus {corpus}: no 'none' run to compare with")
        base = reports["none"][1]
        for aug, (val, test, steps) in reports.items():
            d1 = mean_r(test, "R@1") - mean_r(base, "R@1")
            d10 = mean_r(test, "R@10") - mean_r(base, "R@10")
            helps = d1 >= args.margin and d10 >= 0
            if aug != "none":
                verdicts.setdefault(aug, []).append(helps)
            values = " | ".join(f"{v:.3f}" for v in cells(val) + cells(test))
            delta = (
                "– | – |"
                if aug == "none"
                else f"{d1:+.3f} | {d10:+.3f} | {'yes' if helps else 'no'}"
            )
            lines.append(f"| {corpus} | {aug} | {steps} | {values} | {delta} |")
            print(lines[-1], flush=True)
    on_all = sorted(a for a, v in verdicts.items() if all(v) and len(v) == len(manifests))
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    note = f" ({args.note})" if args.note else ""
    text = (
        "# Augmentations: each alone vs none (same steps, same seed)\n\n"
        f"Machine: {machine}, shared with other jobs while measured{note}. "
        "Rows made by `bench/augment.py`; Δ: the change of the test R@1 / R@10 averaged "
        f"over both directions against the corpus's `none` run; helps: Δ R@1 ≥ "
        f"{args.margin} and Δ R@10 ≥ 0.\n\n"
        + "\n".join(lines)
        + f"\n\nHelps on every corpus: {', '.join(on_all) if on_all else 'none'}.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
