"""Under CI a test skipped for a missing module fails (tests/conftest.py): a green CI run
cannot hide a missing install step behind ``pytest.importorskip``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


def run_pytest(folder: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
    )


@pytest.mark.slow
@pytest.mark.parametrize("where", ["in a test", "at module level"])
def test_missing_module_skip_fails_under_ci_only(tmp_path: Path, where: str) -> None:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    skip = 'pytest.importorskip("no_such_module_for_ci_check")'
    body = (
        f"import pytest\n\ndef test_needs_it():\n    {skip}\n"
        if where == "in a test"
        else f"import pytest\n\n{skip}\n\ndef test_needs_it():\n    pass\n"
    )
    (tmp_path / "test_sample.py").write_text(body)
    (tmp_path / "test_plain_skip.py").write_text(
        "import pytest\n\n@pytest.mark.skip(reason='by choice')\ndef test_skipped():\n    pass\n"
    )

    local = run_pytest(tmp_path, None)
    assert local.returncode == 0, local.stdout
    assert "2 skipped" in local.stdout

    ci = run_pytest(tmp_path, "true")
    assert ci.returncode != 0, ci.stdout
    assert "install step is missing" in ci.stdout
    assert "no_such_module_for_ci_check" in ci.stdout
