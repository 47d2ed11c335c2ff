"""The demo's HTML report: evaluation tables, curves, frames and players.

A self-contained folder (``report/index.html`` and ``report/media/``) that opens anywhere:
every medium it shows is copied in, videos have poster frames, players show their
controls and durations before playing. Ids, labels and file names are escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.apps.report import (
    Html,
    HtmlReport,
    audio_player,
    clear_folder,
    element,
    html_table,
    video_player,
)

INSTANCE_KEYS = ("R@1", "R@5", "R@10", "MedR", "MeanR", "mAP")
# Ranks print with one decimal (a median of ranks can be a half), recalls and mAP three.
METRIC_FORMATS = {"MedR": ".1f", "MeanR": ".1f"}
REPORT_DIR = "report"


def _frames(video: str | Path, count: int, size: int | None) -> np.ndarray:
    from crossmodal.data.decoders import decord_module

    decord = decord_module()
    sizes = {"width": size, "height": size} if size else {}
    reader = decord.VideoReader(str(video), num_threads=1, **sizes)
    idx = np.linspace(0, len(reader) - 1, count + 2)[1:-1].round().astype(int)
    return reader.get_batch(list(idx)).asnumpy()


def frame_strip(video: str | Path, out_png: Path, frames: int = 6, size: int = 96) -> Path:
    """A row of ``frames`` evenly spaced frames of ``video`` as one PNG."""
    from PIL import Image

    strip = np.concatenate(list(_frames(video, frames, size)), axis=1)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(out_png)
    return out_png


def poster_frame(video: str | Path, out_png: Path) -> Path:
    """The middle frame of ``video`` at its own size, as a PNG (a player's poster)."""
    from PIL import Image

    out_png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_frames(video, 1, None)[0]).save(out_png)
    return out_png


def _video(report: HtmlReport, path: str | Path, width: int) -> Html:
    poster = poster_frame(path, report.new_media_path(".png"))
    return video_player(report.media(path), poster=report.media(poster), width=width)


def _card(record: Any, found: str, *content: Html) -> Html:
    """One example: the query's id, mood and whether its true pair was found, then
    ``content``."""
    mood = element("b", record.label or "none")
    heading = [element("b", record.id), " — mood ", mood, f" — {found}", element("br")]
    return element("div", *heading, *content, class_="card")


def _metrics_rows(trained: dict, untrained: dict) -> tuple[list[list[Any]], list[str]]:
    rows: list[list[Any]] = []
    classes: list[str] = []
    # Random ranking with one true item among N: the true item's rank is uniform on 1..N.
    chance_rank = (trained["gallery_size"] + 1) / 2
    for direction in ("video_to_music", "music_to_video"):
        for name, rep in (("untrained", untrained), ("trained", trained)):
            rows.append(
                [direction.replace("_", " "), name]
                + [float(rep[direction][k]) for k in INSTANCE_KEYS]
            )
            classes.append("hit" if name == "trained" else "")
        chance = trained["chance"]
        rows.append(
            [
                direction.replace("_", " "),
                "chance",
                float(chance["R@1"]),
                None,
                float(chance["R@10"]),
                chance_rank,
                chance_rank,
                None,
            ]
        )
        classes.append("")
    return rows, classes


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
    """Write ``out/report/`` and return its ``index.html``."""
    folder = out / REPORT_DIR
    clear_folder(folder)
    report = HtmlReport("crossmodal demo", folder)
    trained, untrained = reports["trained"], reports["untrained"]
    report.paragraph(
        f"Synthetic corpus of {corpus_size} music videos (6 moods); the model was trained for "
        f"{training['train_seconds'] / 60:.1f} min ({training['epochs_done']} epochs, "
        f"{training['steps']} steps) "
        f"on this machine, then evaluated on the {trained['gallery_size']}-clip test split, where "
        "each video must find its own soundtrack among all test tracks and back."
    )
    report.heading("Retrieval on the test split")
    rows, classes = _metrics_rows(trained, untrained)
    report.table(["direction", "model", *INSTANCE_KEYS], rows, classes, METRIC_FORMATS)
    report.paragraph(
        "Chance: a random ranking; its MedR and MeanR are (N + 1) / 2 for one true item "
        f"among the N = {trained['gallery_size']} test clips.",
        muted=True,
    )
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
    for ex in examples:
        record = ex["record"]
        found = (
            f"true track at rank {ex['true_rank']}"
            if ex["true_rank"]
            else "true track not in the top results"
        )
        strip = frame_strip(record.video, report.new_media_path(".png"))
        rows, classes = [], []
        for m in ex["matches"]:
            rows.append(
                [
                    m.rank,
                    Path(m.path).stem,
                    m.label or "",
                    m.score,
                    f"{m.start:.1f}–{m.end:.1f} s",
                    audio_player(report.media(m.path), start=m.start),
                ]
            )
            classes.append("hit" if ex["true_rank"] == m.rank else "")
        report.add(
            _card(
                record,
                found,
                _video(report, record.video, width=224),
                element("img", src=report.media(strip), alt=f"frames of {record.id}"),
                html_table(
                    rows,
                    ["rank", "track", "mood", "score", "best window", "listen"],
                    row_classes=classes,
                ),
            )
        )

    report.heading("Videos found for test tracks")
    for ex in reverse:
        record = ex["record"]
        found = (
            f"true video at rank {ex['true_rank']}"
            if ex["true_rank"]
            else "true video not in the top results"
        )
        rows, classes = [], []
        for m in ex["matches"]:
            rows.append(
                [m.rank, Path(m.path).stem, m.label or "", m.score, _video(report, m.path, 160)]
            )
            classes.append("hit" if ex["true_rank"] == m.rank else "")
        report.add(
            _card(
                record,
                found,
                audio_player(report.media(record.music)),
                html_table(rows, ["rank", "video", "mood", "score", "watch"], row_classes=classes),
            )
        )

    report.heading("Timings")
    report.table(["stage", "seconds"], [[k, float(v)] for k, v in timings.items()], floatfmt=".1f")
    return report.write()
