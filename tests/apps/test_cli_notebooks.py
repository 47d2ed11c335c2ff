"""`crossmodal notebooks` builds a stage of the notebooks' cache and reports it as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossmodal.apps.cli import main


@pytest.mark.slow
def test_notebooks_command_builds_then_reuses_the_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["-q", "notebooks", "--stage", "corpus", "--cache", str(tmp_path)]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["stages"]["corpus"]["state"] == "built"
    manifest = Path(first["folder"]) / "corpus" / "manifest.jsonl"
    assert len(manifest.read_text().splitlines()) == first["config"]["clips"]
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["stages"]["corpus"]["state"] == "reused"
    assert second["folder"] == first["folder"]
