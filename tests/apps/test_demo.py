"""The main job end to end at a toy size: every stage runs and the report links real files."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from crossmodal.apps.cli import main


class _Sources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        src = dict(attrs).get("src")
        if tag in ("img", "audio", "video") and src and not src.startswith("data:"):
            self.sources.append(src.split("#")[0])


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    code = main(
        ["-q", "demo", "--out", str(out), "--clips", "30", "--epochs", "2", "--workers", "1"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "== test split, trained model" in printed
    assert printed.count("true track") == 4  # four example videos, found or not
    report = out / "report" / "index.html"
    assert f"report: {report}" in printed
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert set(evaluation) == {"untrained", "trained"}
    assert evaluation["trained"]["gallery_size"] == 6
    parser = _Sources()
    parser.feed(report.read_text())
    assert any(s.endswith(".png") for s in parser.sources)
    assert any(s.endswith(".mp4") for s in parser.sources)
    for src in parser.sources:
        assert (report.parent / src).is_file(), src
    # running again reuses the corpus instead of regenerating it; other training settings
    # train another model, the same ones reuse it
    (manifest,) = out.glob("data-*/corpus/manifest.jsonl")
    before = manifest.stat().st_mtime_ns
    again = ["-q", "demo", "--out", str(out), "--clips", "30", "--epochs", "1", "--workers", "1"]
    assert main(again) == 0
    assert manifest.stat().st_mtime_ns == before
    runs = sorted(out.glob("data-*/model-*/summary.json"))
    assert [json.loads(r.read_text())["epochs_done"] for r in runs] in ([2, 1], [1, 2])
    stamps = [r.stat().st_mtime_ns for r in runs]
    assert main(again) == 0
    assert [r.stat().st_mtime_ns for r in runs] == stamps
