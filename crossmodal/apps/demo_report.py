"""The demo's HTML report: evaluation tables, curves, frames and players."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.apps.report import HtmlReport

INSTANCE_KEYS = ("R@1", "R@5", "R@10", "MedR", "MeanR", "mAP")


def frame_strip(video: str | Path, out_png: Path, frames: int = 6, size: int = 96) -> Path:
    """A row of ``frames`` evenly spaced frames of ``video`` as one PNG."""
    from PIL import Image

    from crossmodal.data.decoders import decord_module

    decord = decord_module()
    reader = decord.VideoReader(str(video), width=size, height=size, num_threads=1)
    idx = np.linspace(0, len(reader) - 1, frames).round().astype(int)
    batch = reader.get_batch(list(idx)).asnumpy()
    strip = np.concatenate(list(batch), axis=1)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(out_png)
    return out_png


def write_report(
    out: Path,
    reports: dict[str, Any],
    examples: list[dict],
    reverse: list[dict],
    training: dict[str, Any],
    run_dir: Path,
    timings: dict[str, float],
    corpus_size: int,
) -> Path:
    report = HtmlReport("crossmodal demo", out / "report.html")
    trained, untrained = reports["trained"], reports["untrained"]
    report.paragraph(
        f"Synthetic corpus of {corpus_size} music videos (6 moods); the model was trained for "
        f"{training['train_seconds'] / 60:.1f} min ({training['epochs_done']} epochs, "
        f"{training['steps']} steps) "
        f"on this machine, then evaluated on the {trained['gallery_size']}-clip test split, where "
        "each video must find its own soundtrack among all test tracks and back."
    )
    report.heading("Retrieval on the test split")
    rows, classes = [], []
    for direction in ("video_to_music", "music_to_video"):
        for name, rep in (("untrained", untrained), ("trained", trained)):
            rows.append(
                [
                    direction.replace("_", " "),
                    name,
                    *[float(rep[direction][k]) for k in INSTANCE_KEYS],
                ]
            )
            classes.append("hit" if name == "trained" else "")
        rows.append(
            [
                direction.replace("_", " "),
                "chance",
                float(trained["chance"]["R@1"]),
                "",
                float(trained["chance"]["R@10"]),
                "",
                "",
                "",
            ]
        )
        classes.append("")
    report.table(["direction", "model", *INSTANCE_KEYS], rows, classes)
    if "category" in trained:
        cat = trained["category"]
        report.paragraph(
            f"Mood level (trained): P@1 video→music {cat['video_to_music']['P@1']:.3f}, "
            f"music→video {cat['music_to_video']['P@1']:.3f} (chance {cat['chance_P@1']:.3f}); "
            f"NMI of the joint space {cat.get('NMI', float('nan')):.3f}."
        )
    curves = run_dir / "curves.png"
    if curves.is_file():
        report.heading("Training curves")
        report.image(curves, alt="training curves")

    report.heading("Music recommended for test videos")
    for n, ex in enumerate(examples):
        record = ex["record"]
        strip = frame_strip(record.video, out / "report_files" / f"query_{n}.png")
        found = (
            f"true track at rank {ex['true_rank']}"
            if ex["true_rank"]
            else "true track not in the top results"
        )
        report.raw(
            f'<div class="card"><b>{record.id}</b> — mood <b>{record.label}</b> — {found}<br>'
        )
        report.image(strip, alt=f"frames of {record.id}")
        rows, classes = [], []
        for m in ex["matches"]:
            is_true = ex["true_rank"] == m.rank
            rows.append(
                [
                    m.rank,
                    Path(m.path).stem,
                    m.label or "",
                    m.score,
                    f"{m.start:.1f}–{m.end:.1f} s",
                    report.audio_html(m.path, start=m.start),
                ]
            )
            classes.append("hit" if is_true else "")
        report.table(["rank", "track", "mood", "score", "best window", "listen"], rows, classes)
        report.raw("</div>")

    report.heading("Videos found for test tracks")
    for ex in reverse:
        record = ex["record"]
        found = (
            f"true video at rank {ex['true_rank']}"
            if ex["true_rank"]
            else "true video not in the top results"
        )
        report.raw(
            f'<div class="card"><b>{record.id}</b> — mood <b>{record.label}</b> — {found}<br>'
        )
        report.raw(report.audio_html(record.music).html)
        rows, classes = [], []
        for m in ex["matches"]:
            rows.append(
                [
                    m.rank,
                    Path(m.path).stem,
                    m.label or "",
                    m.score,
                    report.video_html(m.path, width=112),
                ]
            )
            classes.append("hit" if ex["true_rank"] == m.rank else "")
        report.table(["rank", "video", "mood", "score", "watch"], rows, classes)
        report.raw("</div>")

    report.heading("Timings")
    report.table(["stage", "seconds"], [[k, float(v)] for k, v in timings.items()])
    return report.write()
