from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crossmodal import __version__
from crossmodal.apps.cli import COMMANDS, build_parser, main


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"crossmodal {__version__}"


def test_help_lists_exactly_the_registered_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(c.replace("-", "_") for c in sub.choices) == sorted(COMMANDS)
    for name in sub.choices:
        assert name in out
    # Every listed subcommand has its own working --help.
    for name in sub.choices:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: crossmodal" in capsys.readouterr().out


def test_unknown_command_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_info_json_reports_installed_stack(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    assert main(["-q", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["crossmodal"] == __version__
    assert info["packages"]["torch"] == torch.__version__.split("+")[0]
    assert info["cuda"] is False  # tests run on CPU (conftest hides CUDA)


def test_console_script_runs_as_module() -> None:
    # `python -m crossmodal` is what torchrun uses; it must behave like the console script.
    proc = subprocess.run(
        [sys.executable, "-m", "crossmodal", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"crossmodal {__version__}"
