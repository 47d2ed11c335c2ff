"""Mood-aware matching on the test split: instance R@1, mood MAP@R (both directions) and
"music for a new video" (top-10 same-mood share with the video's own track left out),
for trained runs, at their default blend and, for runs with a vibe part, at a sweep of
blends α, scored as the model scores (``model.layout.scores``: gated by the model's sync
gate when it has one, as :class:`~crossmodal.retrieval.recommender.Recommender` ranks;
``--linear`` adds the same rows without the gate); plus the ceiling: a mood classifier's
class-probability embeddings.

    python bench/mood_matching.py MANIFEST --run NAME RUN_DIR [--run …] [--linear]
        [--classifier RUN_DIR] [--alphas 0,0.1,…] [--out bench/results/mood_matching.md]

Runs are made with ``crossmodal train`` as a user would (docs/training.md gives the
commands); ``--classifier`` names a run trained with a mood proxy loss alone (its
NormFace/CosFace/ArcFace proxies give each clip a softmax over moods).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from crossmodal.checkpoint import load_checkpoint
from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings
from crossmodal.inference import embed_dataset, load_trained_model, manifest_dataset

COLUMNS = ("v→m R@1", "m→v R@1", "mood MAP@R v→m", "mood MAP@R m→v", "new-video top-10")


def scores(video: torch.Tensor, music: torch.Tensor, tracks, labels, scorer=None) -> list[float]:
    """The table's columns for one pair of embedding sets (``scorer``: how a query scores
    the gallery; default the dot product)."""
    report = evaluate_embeddings(video, music, tracks, labels, with_nmi=False, scorer=scorer)
    cat = report["category"]
    return [
        report["video_to_music"]["R@1"],
        report["music_to_video"]["R@1"],
        cat["video_to_music"]["MAP@R"],
        cat["music_to_video"]["MAP@R"],
        cat["new_video_top10"],
    ]


def run_rows(
    name: str, run_dir: Path, manifest: Path, alphas: list[float], linear: bool = False
) -> list[list[Any]]:
    """The run at its default score and at each blend in ``alphas``, scored as the model
    scores (:meth:`~crossmodal.embedding_layout.EmbeddingLayout.scores`: gated when it has
    a sync gate); ``linear``: the same rows again with the gate removed."""
    model = load_trained_model(run_dir / "model.pt")
    dataset = manifest_dataset(model, manifest, "test", run_dir=run_dir)
    emb = embed_dataset(model, dataset, batch_size=64)
    summary = json.loads((run_dir / "summary.json").read_text())
    facts = f"{summary['steps']} steps, {summary['train_seconds'] / 60:.1f} min"
    layouts = [("", model.layout)]
    if linear and model.layout.gated:
        layouts.append((" linear", model.layout.with_gate(None)))
    rows = []
    for suffix, layout in layouts:
        if not layout.has_vibe:
            rows.append([name, "–", facts, *scores(emb.video, emb.music, emb.tracks, emb.labels)])
            continue
        gate = f", gate {layout.gate:.3f}" if layout.gated else ""
        for alpha in [None, *alphas]:
            label = f"default {layout.blend:g}{gate}" if alpha is None else f"α {alpha:g}"

            def scorer(q, g, a=alpha, lay=layout):
                return lay.scores(q, g, a)

            row = scores(emb.video, emb.music, emb.tracks, emb.labels, scorer)
            rows.append([name + suffix, label, facts if alpha is None else "", *row])
    return rows


def classifier_row(run_dir: Path, manifest: Path) -> list[Any]:
    """Class-probability embeddings of a mood classifier run (its proxy term's softmax;
    of the vibe part when the run has one)."""
    model = load_trained_model(run_dir / "model.pt")
    source = run_dir / ("best.pt" if (run_dir / "best.pt").is_file() else "last.pt")
    state = load_checkpoint(source)["objective"]
    (key,) = [k for k in state if k.endswith(".weight")]
    proxies = F.normalize(state[key].float(), dim=1)
    scale = 20.0
    dataset = manifest_dataset(model, manifest, "test", run_dir=run_dir)
    emb = embed_dataset(model, dataset, batch_size=64)

    def probs(x: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.softmax(scale * F.normalize(x, dim=1) @ proxies.T, dim=1), dim=1)

    def mood_part(x: torch.Tensor) -> torch.Tensor:
        # Proxies as wide as the vibe part: a classifier trained on it (else the whole).
        if model.layout.has_vibe and proxies.shape[1] == model.layout.vibe_dim:
            return model.layout.split(x)[1]
        return x

    video, music = probs(mood_part(emb.video)), probs(mood_part(emb.music))
    accuracy = [float((p.argmax(1) == emb.labels).float().mean()) for p in (video, music)]
    row = ["ceiling: mood classifier", f"accuracy v {accuracy[0]:.2f} m {accuracy[1]:.2f}", ""]
    return row + scores(video, music, emb.tracks, emb.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--run", nargs=2, action="append", default=[], metavar=("NAME", "DIR"))
    parser.add_argument("--classifier", type=Path)
    parser.add_argument("--alphas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.8,1")
    parser.add_argument("--out", type=Path, default=Path("bench/results/mood_matching.md"))
    parser.add_argument("--note", default="", help="a line under the table (machine, load)")
    parser.add_argument(
        "--linear", action="store_true", help="also score gated runs without their gate"
    )
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    alphas = [float(a) for a in args.alphas.split(",")]
    rows = []
    for name, run_dir in args.run:
        rows += run_rows(name, Path(run_dir), args.manifest, alphas, args.linear)
    if args.classifier is not None:
        rows.append(classifier_row(args.classifier, args.manifest))
    lines = [
        f"Test split of `{args.manifest}`.",
        "",
        "| run | score | training | " + " | ".join(COLUMNS) + " |",
        "|---|---|---|" + "---:|" * len(COLUMNS),
    ]
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if args.note:
        lines += ["", args.note]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as out:
        out.write(text + "\n")


if __name__ == "__main__":
    main()
