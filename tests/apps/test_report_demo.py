"""The demo's report: a folder that opens anywhere, with playable players whose durations
show before playing, sensible numbers, and every id, label and file name escaped."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile

from crossmodal.apps.demo_report import write_report
from crossmodal.retrieval.recommender import Match
from tests.apps.browser import media_states
from tests.apps.media_helpers import FILE_XSS, SCRIPT, make_video, noise_music
from tests.apps.test_report import parsed

METRICS = {"R@1": 0.25, "R@5": 0.5, "R@10": 0.75, "MedR": 101.0, "MeanR": 27.5, "mAP": 0.3}


def _report_inputs(root: Path) -> dict[str, Any]:
    folder = root / "corpus" / FILE_XSS
    folder.mkdir(parents=True)
    videos, tracks = [], []
    for i in range(3):
        videos.append(make_video(folder / f"{FILE_XSS}{i}.mp4", 4.0, seed=i))
        tracks.append(folder / f"{FILE_XSS}{i}.wav")
        soundfile.write(tracks[-1], noise_music(4.0, seed=i), 44100)
    record = SimpleNamespace(id=SCRIPT, label=SCRIPT, video=videos[0], music=tracks[0])

    def matches(paths: list[Path]) -> list[Match]:
        return [
            Match(i + 1, str(p), 0.9 - 0.1 * i, 1.5, 5.5, SCRIPT, 4.0, None)
            for i, p in enumerate(paths)
        ]

    metrics = {"video_to_music": METRICS, "music_to_video": METRICS}
    trained = {**metrics, "gallery_size": 200, "chance": {"R@1": 0.005, "R@10": 0.05}}
    return {
        "out": root / "demo",
        "reports": {"trained": trained, "untrained": dict(metrics)},
        "examples": [{"record": record, "matches": matches(tracks), "true_rank": 1}],
        "reverse": [{"record": record, "matches": matches(videos), "true_rank": None}],
        "training": {"train_seconds": 90.0, "epochs_done": 2, "steps": 10},
        "run_dir": root / "run",
        "timings": {"corpus": 27.5, "train": 90.04},
        "corpus_size": 3,
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report written, then its folder moved away from the corpus it was made from."""
    root = tmp_path_factory.mktemp("report")
    path = write_report(**_report_inputs(root))
    assert path == root / "demo" / "report" / "index.html"
    moved = root / "copied elsewhere"
    shutil.move(path.parent, moved)
    shutil.rmtree(root / "corpus")  # nothing may still point into it
    return moved / "index.html"


def test_report_escapes_ids_labels_and_file_names(report: Path) -> None:
    doc = report.read_text()
    parser = parsed(doc)
    assert "script" not in [tag for tag, _ in parser.tags]
    assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")]
    text = "".join(parser.text)
    assert text.count(SCRIPT) >= 4  # id and labels shown as text
    assert FILE_XSS in text  # file names too


def test_report_numbers_and_chance_ranks(report: Path) -> None:
    text = " ".join(parsed(report.read_text()).text)
    assert "101.0" in text
    assert "27.5" in text
    assert "101.000" not in text
    assert "27.500" not in text
    assert "90.0" in text  # timings with one decimal
    # Chance rows carry MedR and MeanR: (200 + 1) / 2.
    assert text.count("100.5") == 4


def test_report_folder_is_self_contained(report: Path) -> None:
    tags = parsed(report.read_text()).tags
    sources = [a[key] for t, a in tags for key in ("src", "poster") if a.get(key)]
    assert sources
    for src in sources:
        assert not re.match(r"^(/|\.\.|[a-z]+:)", src), src
        assert (report.parent / src.split("#")[0]).is_file(), src
    videos = [a for t, a in tags if t == "video"]
    assert len(videos) == 4  # the query video and three found videos
    assert all(a.get("poster") and a.get("preload") == "metadata" for a in videos)
    assert all("controls" in a for t, a in tags if t in ("audio", "video"))


def test_every_player_reports_its_duration_in_chromium(report: Path, browser: Any) -> None:
    browser.get(report.as_uri())
    states = media_states(browser)
    assert len(states) == 8  # 3 tracks, 1 query track, 1 query video, 3 found videos
    for state in states:
        assert state["error"] is None, state
        assert state["duration"] == pytest.approx(4.0, abs=0.1), state
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('video')].map(v => v.getBoundingClientRect().width)"
    )
    assert min(sizes) >= 160
    assert np.all(np.isfinite([s["duration"] for s in states]))
