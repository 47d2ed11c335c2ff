"""The README's Python snippets run as written, against a small index built here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readme_has_python_snippets() -> None:
    assert python_blocks(), "the README lost its Python example"


@pytest.mark.slow
def test_readme_python_snippets_run(tmp_path: Path) -> None:
    from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
    from crossmodal.model import CrossModalModel, ModelConfig
    from crossmodal.retrieval.indexer import Indexer, library_files

    generate_corpus(tmp_path / "corpus", SynthConfig(clips=6, seed=0), progress=False)
    manifest = tmp_path / "corpus" / "manifest.jsonl"
    model = CrossModalModel.from_config(ModelConfig())
    (tmp_path / "runs" / "default").mkdir(parents=True)
    model.save(tmp_path / "runs" / "default" / "model.pt")
    Indexer(model, tmp_path / "index").index(
        {m: library_files(manifest, m) for m in ("music", "video")}
    )
    for block in python_blocks():
        run = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.strip(), "a snippet should show its result"
