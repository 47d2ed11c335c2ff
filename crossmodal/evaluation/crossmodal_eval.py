"""Both directions of cross-modal retrieval evaluated from embeddings.

``video_to_music``: each video queries the gallery of all music embeddings;
``music_to_video``: the reverse. Relevance at instance level is a shared track index.
"""

from __future__ import annotations

from typing import Any

import torch

from crossmodal.evaluation.metrics import (
    DEFAULT_KS,
    category_metrics,
    chance_recall,
    instance_metrics,
    kmeans_nmi,
    new_video_mood_share,
)
from crossmodal.evaluation.ranking import Scorer

INSTANCE_KEYS = ("R@1", "R@5", "R@10", "MedR", "MeanR", "mAP")


def evaluate_embeddings(
    video_emb: torch.Tensor,
    music_emb: torch.Tensor,
    tracks: torch.Tensor,
    labels: torch.Tensor | None = None,
    chunk_size: int = 256,
    with_nmi: bool = True,
    scorer: Scorer | None = None,
) -> dict[str, Any]:
    """The evaluation report as a JSON-ready dict.

    ``{"video_to_music": {R@1, R@5, R@10, MedR, MeanR, mAP}, "music_to_video": {…},
    "gallery_size": N, "chance": {"R@1", "R@10"}}`` plus, when ``labels`` has at least two
    distinct non-negative values, ``"category": {"video_to_music": {P@1, MAP@R},
    "music_to_video": {…}, "NMI": …, "chance_P@1": …, "new_video_top10": …}``
    (``new_video_top10``: :func:`~crossmodal.evaluation.metrics.new_video_mood_share`,
    music for a video whose own track is not in the gallery). ``scorer``: how a query
    scores the gallery (default: the dot product; a two-part model's
    ``model.layout.scores``, as ``evaluate`` and training validation use).
    """
    if video_emb.shape != music_emb.shape:
        raise ValueError(
            f"video {tuple(video_emb.shape)} and music {tuple(music_emb.shape)} embeddings differ"
        )
    video_emb = video_emb.float()
    music_emb = music_emb.float()
    report: dict[str, Any] = {}
    for name, queries, gallery in (
        ("video_to_music", video_emb, music_emb),
        ("music_to_video", music_emb, video_emb),
    ):
        m = instance_metrics(queries, gallery, tracks, tracks, DEFAULT_KS, chunk_size, scorer)
        report[name] = {k: m[k] for k in INSTANCE_KEYS}
    report["gallery_size"] = int(music_emb.shape[0])
    report["chance"] = {
        "R@1": round(chance_recall(tracks, tracks, 1), 6),
        "R@10": round(chance_recall(tracks, tracks, 10), 6),
    }
    if labels is not None:
        keep = labels >= 0
        if keep.any() and len(torch.unique(labels[keep])) >= 2:
            lab = labels[keep]
            category: dict[str, Any] = {}
            for name, queries, gallery in (
                ("video_to_music", video_emb[keep], music_emb[keep]),
                ("music_to_video", music_emb[keep], video_emb[keep]),
            ):
                category[name] = category_metrics(queries, gallery, lab, lab, chunk_size, scorer)
            category["chance_P@1"] = round(chance_recall(lab, lab, 1), 6)
            category["new_video_top10"] = new_video_mood_share(
                video_emb[keep], music_emb[keep], tracks[keep], lab, 10, chunk_size, scorer
            )
            if with_nmi:
                category["NMI"] = kmeans_nmi(
                    torch.cat([video_emb[keep], music_emb[keep]]), torch.cat([lab, lab])
                )
            report["category"] = category
    return report


def format_report(
    report: dict[str, Any], baselines: dict[str, dict[str, Any]] | None = None
) -> str:
    """A small fixed-width table of a report from :func:`evaluate_embeddings`;
    ``baselines`` (name → report of the same clips, e.g. from
    :func:`crossmodal.evaluation.baseline.sync_baseline`) add a row under each direction."""
    lines = [
        f"gallery: {report['gallery_size']} clips   chance R@1 {report['chance']['R@1']:.3f}"
        f"   chance R@10 {report['chance']['R@10']:.3f}"
    ]
    header = f"{'direction':<16}" + "".join(f"{k:>8}" for k in INSTANCE_KEYS)
    lines.append(header)
    for name in ("video_to_music", "music_to_video"):
        lines.append(f"{name:<16}{_cells(report[name])}")
        for base_name, base in (baselines or {}).items():
            lines.append(f"{'  ' + base_name + ' baseline':<16}{_cells(base[name])}")
    if "category" in report:
        cat = report["category"]
        lines.append(
            "category: P@1 v→m {:.3f}  m→v {:.3f}   MAP@R v→m {:.3f}  m→v {:.3f}   "
            "chance P@1 {:.3f}{}{}".format(
                cat["video_to_music"]["P@1"],
                cat["music_to_video"]["P@1"],
                cat["video_to_music"]["MAP@R"],
                cat["music_to_video"]["MAP@R"],
                cat["chance_P@1"],
                f"   NMI {cat['NMI']:.3f}" if "NMI" in cat else "",
                f"\nnew video (own track left out): top-10 same mood {cat['new_video_top10']:.3f}"
                if "new_video_top10" in cat
                else "",
            )
        )
    if "blend" in report:
        gate = report.get("sync_gate")
        lines.append(
            f"score: (1−α)·sync + α·vibe at α {report['blend']:g}"
            + (f", sync gated at {gate:.3f}" if gate is not None else "")
        )
    return "\n".join(lines)


def _cells(row: dict[str, float]) -> str:
    return "".join(
        f"{row[k]:>8.1f}" if k in ("MedR", "MeanR") else f"{row[k]:>8.3f}" for k in INSTANCE_KEYS
    )
