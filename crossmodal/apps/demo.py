"""The main job: synthetic corpus → training → evaluation → index → recommendations →
an HTML report. ``crossmodal demo`` (and ``make demo``) run it end to end on a CPU."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.apps.pipeline import Pipeline, PipelineConfig
from crossmodal.fileio import atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """The demo's corpus size and split, seed, training budget, corpus workers, and how
    many example queries (``examples``) with how many results each (``k``)."""

    out: Path
    clips: int = 1000
    split: tuple[int, int, int] = (700, 100, 200)
    seed: int = 0
    train_minutes: float = 5.0
    epochs: int = 10
    workers: int = 2
    examples: int = 4
    k: int = 5

    def pipeline_config(self) -> PipelineConfig:
        """The shared pipeline's settings for this demo (no long-clip library)."""
        return PipelineConfig(
            clips=self.clips,
            split=self.split,
            seed=self.seed,
            epochs=self.epochs,
            batch_size=min(64, self.split[0]),
            train_minutes=self.train_minutes,
            workers=self.workers,
        )


def _step(name: str, timings: dict[str, float], started: float) -> None:
    timings[name] = round(time.perf_counter() - started, 1)
    log.info("%s done in %.1f s", name, timings[name])


def run_demo(cfg: DemoConfig) -> Path:
    """Run every stage; returns the report path. Re-running reuses what the pipeline
    already built for the same settings (corpus, model, index)."""
    from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings, format_report
    from crossmodal.inference import embed_dataset
    from crossmodal.retrieval.recommender import Recommender

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(cfg.pipeline_config(), out)
    timings: dict[str, float] = {}
    total_start = time.perf_counter()

    # 1. corpus
    t = time.perf_counter()
    pipeline.corpus()
    _step("corpus", timings, t)
    records = pipeline.records()
    test_records = pipeline.records("test")

    # 2. train (the trainer's own validation uses the val split)
    t = time.perf_counter()
    pipeline.model()
    _step("train", timings, t)
    training = json.loads((pipeline.run_dir / "summary.json").read_text())

    # 3. evaluate untrained and trained on the test split
    t = time.perf_counter()
    reports = {}
    for name in ("untrained", "trained"):
        model = pipeline.load_model(trained=name == "trained")
        embedded = embed_dataset(
            model, pipeline.dataset("test", model), batch_size=64, desc=f"test ({name})"
        )
        reports[name] = evaluate_embeddings(
            embedded.video,
            embedded.music,
            embedded.tracks,
            embedded.labels,
            scorer=model.layout.scores,
        )
    atomic_write_text(out / "evaluation.json", json.dumps(reports, indent=2) + "\n")
    _step("evaluate", timings, t)

    # 4. index the test split's music and videos
    t = time.perf_counter()
    index_dir = pipeline.index()
    _step("index", timings, t)

    # 5. recommendations for a few test videos, and videos for a few tracks
    t = time.perf_counter()
    rec = Recommender.load(index_dir)
    rng = np.random.default_rng(cfg.seed)
    picks = [test_records[i] for i in rng.choice(len(test_records), cfg.examples, replace=False)]
    examples = []
    for record in picks:
        matches = rec.recommend_music(record.video, k=cfg.k)
        true_rank = next(
            (m.rank for m in matches if Path(m.path).resolve() == Path(record.music).resolve()),
            None,
        )
        examples.append({"record": record, "matches": matches, "true_rank": true_rank})
    reverse = []
    for record in picks[:2]:
        matches = rec.find_videos(record.music, k=cfg.k)
        true_rank = next(
            (m.rank for m in matches if Path(m.path).resolve() == Path(record.video).resolve()),
            None,
        )
        reverse.append({"record": record, "matches": matches, "true_rank": true_rank})
    rec.close()
    _step("recommend", timings, t)
    timings["total"] = round(time.perf_counter() - total_start, 1)

    # 6. report
    from crossmodal.apps.demo_report import write_report

    report_path = write_report(
        out, reports, examples, reverse, training, pipeline.run_dir, timings, len(records)
    )
    print_summary(reports, examples, timings, report_path, format_report)
    return report_path


def print_summary(
    reports: dict[str, Any],
    examples: list[dict],
    timings: dict[str, float],
    report_path: Path,
    format_report: Any,
) -> None:
    print("\n== test split, untrained model")
    print(format_report(reports["untrained"]))
    print("\n== test split, trained model")
    print(format_report(reports["trained"]))
    print("\n== music recommended for test videos")
    for ex in examples:
        record = ex["record"]
        found = (
            f"true track at rank {ex['true_rank']}"
            if ex["true_rank"]
            else "true track not in top-k"
        )
        print(f"{record.id} [{record.label}] → {found}")
        for m in ex["matches"]:
            print(f"   {m.rank}. {Path(m.path).stem} [{m.label}] score {m.score:.3f}")
    print("\n== timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    print(f"report: {report_path}")
