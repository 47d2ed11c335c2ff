"""Keep notebooks in git without outputs: strip them, or check that they are stripped.

``python -m tools.notebook_strip notebooks/*.ipynb`` removes every code cell's
outputs and execution count (and the per-cell ``execution`` timing metadata that
nbclient records, and the kernel details a run adds to ``language_info``) in place,
atomically; ``--check`` changes nothing and exits 1 listing
the notebooks that still carry outputs. Plain JSON, written the way nbformat writes it
(indent 1, sorted keys, UTF-8, trailing newline), so no extra dependency is needed and a
stripped notebook saved by Jupyter does not change.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_write_text

# Cell metadata written by executing a notebook, not by its author.
RUN_METADATA = ("execution",)
# Of the notebook's ``language_info``, the kernel that ran it fills in everything but the
# name (interpreter version, lexer, mimetype, ...).
LANGUAGE_INFO_KEPT = ("name",)


class NotebookFormatError(CrossmodalError):
    """A file that is not a notebook (bad JSON or no list of cells)."""


def read_notebook(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The notebook at ``path`` as a dict; :class:`NotebookFormatError` when it is not one."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise NotebookFormatError(f"{path}: no such notebook") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NotebookFormatError(f"{path}: not a notebook (invalid JSON: {err})") from err
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookFormatError(f"{path}: not a notebook (no list of cells)")
    return nb


def dumps_notebook(nb: dict[str, Any]) -> str:
    """The notebook as nbformat writes it: indent 1, sorted keys, UTF-8, final newline."""
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + (
        "\n"
    )


def run_leftovers(nb: dict[str, Any]) -> list[str]:
    """What running the notebook left in it, one line per cell: ``"cell 3: 2 outputs,
    execution count 5"`` (and one for the kernel's ``language_info`` details); empty
    when the notebook is stripped."""
    problems = []
    info = nb.get("metadata", {}).get("language_info", {})
    kernel_details = sorted(set(info) - set(LANGUAGE_INFO_KEPT))
    if kernel_details:
        problems.append(f"notebook metadata: language_info {', '.join(kernel_details)}")
    for number, cell in enumerate(nb["cells"], start=1):
        if cell.get("cell_type") != "code":
            continue
        found = []
        if cell.get("outputs"):
            found.append(f"{len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"execution count {cell['execution_count']}")
        timing = [key for key in RUN_METADATA if key in cell.get("metadata", {})]
        if timing:
            found.append(f"metadata {', '.join(timing)}")
        if found:
            problems.append(f"cell {number}: {', '.join(found)}")
    return problems


def strip_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``nb`` whose code cells have no outputs, no execution count and no run
    metadata, and whose ``language_info`` keeps only the language name; markdown,
    sources, ids and other metadata are kept."""
    out = copy.deepcopy(nb)
    info = out.get("metadata", {}).get("language_info")
    if isinstance(info, dict):
        out["metadata"]["language_info"] = {k: info[k] for k in LANGUAGE_INFO_KEPT if k in info}
    for cell in out["cells"]:
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = []
        cell["execution_count"] = None
        metadata = cell.get("metadata", {})
        for key in RUN_METADATA:
            metadata.pop(key, None)
    return out


def strip_file(path: str | os.PathLike[str]) -> bool:
    """Strip the notebook at ``path`` in place (atomic replace); True when it changed."""
    nb = read_notebook(path)
    if not run_leftovers(nb):
        return False
    atomic_write_text(path, dumps_notebook(strip_notebook(nb)))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.notebook_strip",
        description="Remove outputs and execution counts from notebooks (in place).",
    )
    parser.add_argument("notebooks", nargs="+", type=Path, help=".ipynb files")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any has outputs"
    )
    args = parser.parse_args(argv)
    dirty = 0
    try:
        for path in args.notebooks:
            if args.check:
                problems = run_leftovers(read_notebook(path))
                if problems:
                    dirty += 1
                    print(f"{path}: not stripped ({'; '.join(problems)})")
            elif strip_file(path):
                print(f"stripped {path}")
    except NotebookFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if dirty:
        print(f"{dirty} notebook(s) carry outputs: run python -m tools.notebook_strip on them")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
