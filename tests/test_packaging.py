"""The wheel holds exactly the `crossmodal` import tree: encoders/ and data/ mapped under it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Source folder -> import name, as pyproject's package-dir maps them.
ROOTS = {"crossmodal": "crossmodal", "encoders": "crossmodal.encoders", "data": "crossmodal.data"}


def expected_packages() -> set[str]:
    """Every folder with an __init__.py under the three roots, by import name."""
    packages = set()
    for folder, name in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            packages.add(".".join([name, *rel.parts]))
    return packages


@pytest.mark.slow
def test_wheel_contains_exactly_the_package_tree(tmp_path: Path) -> None:
    # setuptools reuses build/ (a git-ignored artifact) and would ship packages that were
    # renamed or removed since it was written.
    shutil.rmtree(REPO / "build", ignore_errors=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("crossmodal-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_levels == {"crossmodal"}
    packages = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages == expected_packages()
    assert {"crossmodal", "crossmodal.encoders", "crossmodal.data"} <= packages
    # The top-level folders must not leak as packages of their own.
    assert not any(n.startswith(("encoders/", "data/")) for n in names)
    # Every .py in the source tree ships (nothing dropped by the mapping).
    for folder, name in ROOTS.items():
        for py in (REPO / folder).rglob("*.py"):
            rel = py.relative_to(REPO / folder)
            assert "/".join([*name.split("."), *rel.parts]) in names, py
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "crossmodal = crossmodal.apps.cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_installed_subpackages_import_from_the_mapped_folders() -> None:
    import crossmodal.data
    import crossmodal.encoders

    assert Path(crossmodal.encoders.__file__).resolve().parent == REPO / "encoders"
    assert Path(crossmodal.data.__file__).resolve().parent == REPO / "data"
