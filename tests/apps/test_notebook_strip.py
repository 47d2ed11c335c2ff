"""The notebook strip tool, against nbformat as the reference writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.notebook_strip import (
    NotebookFormatError,
    dumps_notebook,
    main,
    read_notebook,
    run_leftovers,
    strip_file,
    strip_notebook,
)

nbformat = pytest.importorskip("nbformat")


def executed_notebook() -> Any:
    """A notebook as nbclient leaves it: outputs, counts and timing metadata."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "x"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title ünïcode"),
        nbformat.v4.new_code_cell("print(1)", execution_count=1),
        nbformat.v4.new_code_cell("x = 2", execution_count=2),
        nbformat.v4.new_code_cell("display(x)", execution_count=3),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].metadata["execution"] = {"iopub.status.idle": "2024-01-01T00:00:00Z"}
    nb.cells[1].metadata["tags"] = ["keep-me"]
    nb.cells[3].outputs = [
        nbformat.v4.new_output("display_data", data={"text/plain": "2"}),
        nbformat.v4.new_output("error", ename="E", evalue="boom", traceback=[]),
    ]
    return nb


def write(path: Path, nb: Any) -> None:
    nbformat.write(nb, path)


def test_leftovers_name_every_cell_that_ran() -> None:
    nb = json.loads(nbformat.writes(executed_notebook()))
    assert run_leftovers(nb) == [
        "notebook metadata: language_info mimetype, version",
        "cell 2: 1 output(s), execution count 1, metadata execution",
        "cell 3: execution count 2",
        "cell 4: 2 output(s), execution count 3",
    ]


def test_strip_keeps_sources_ids_and_author_metadata() -> None:
    original = json.loads(nbformat.writes(executed_notebook()))
    stripped = strip_notebook(original)
    assert run_leftovers(stripped) == []
    assert run_leftovers(original), "the input is not modified"
    assert [c["source"] for c in stripped["cells"]] == [c["source"] for c in original["cells"]]
    assert [c["id"] for c in stripped["cells"]] == [c["id"] for c in original["cells"]]
    assert stripped["cells"][1]["metadata"] == {"tags": ["keep-me"]}
    assert stripped["metadata"] == {
        "kernelspec": original["metadata"]["kernelspec"],
        "language_info": {"name": "python"},
    }
    assert strip_notebook(stripped) == stripped
    # What nbformat itself considers a valid notebook.
    nbformat.validate(nbformat.from_dict(stripped))


def test_strip_file_writes_what_nbformat_writes(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    write(path, executed_notebook())
    assert strip_file(path) is True
    reference = nbformat.read(path, as_version=4)
    # The stripped file is byte-identical to nbformat's own serialisation of it, so
    # saving it from Jupyter does not change it.
    assert path.read_text(encoding="utf-8") == nbformat.writes(reference) + "\n"
    assert dumps_notebook(read_notebook(path)) == path.read_text(encoding="utf-8")
    before = path.stat().st_mtime_ns
    assert strip_file(path) is False
    assert path.stat().st_mtime_ns == before, "a clean notebook is not rewritten"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ipynb"], "no temporary left"


def test_check_mode_changes_nothing_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirty, clean = tmp_path / "dirty.ipynb", tmp_path / "clean.ipynb"
    write(dirty, executed_notebook())
    write(clean, executed_notebook())
    strip_file(clean)
    content = dirty.read_bytes()
    assert main(["--check", str(dirty), str(clean)]) == 1
    assert dirty.read_bytes() == content
    out = capsys.readouterr().out
    assert (
        "dirty.ipynb: not stripped (notebook metadata: language_info mimetype, version; cell 2:"
        in out
    )
    assert "clean.ipynb" not in out
    assert main(["--check", str(clean)]) == 0
    assert main([str(dirty)]) == 0
    assert main(["--check", str(dirty)]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"cells": 3}', "no list of cells"),
        ("[]", "no list of cells"),
        (b"\xff\xfe", "invalid JSON"),
    ],
)
def test_a_file_that_is_not_a_notebook_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, message: str
) -> None:
    path = tmp_path / "bad.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = path.read_bytes()
    with pytest.raises(NotebookFormatError, match=message):
        strip_file(path)
    assert main([str(path)]) == 2
    assert "error: " in capsys.readouterr().err
    assert path.read_bytes() == before


def test_missing_notebook_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotebookFormatError, match="no such notebook"):
        read_notebook(tmp_path / "nope.ipynb")
