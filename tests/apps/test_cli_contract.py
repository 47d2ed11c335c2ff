"""The exit-code contract of the command line and the options every command shares."""

from __future__ import annotations

import argparse
import errno
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from crossmodal.apps.cli import EXIT_CODES, EXIT_INTERNAL, EXIT_USAGE, build_parser, main
from crossmodal.logging_utils import progress_bars, setup_logging


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code, meaning in EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in out
    assert "internal error" in out
    assert "bug" in out


@pytest.mark.parametrize("flags", [["-q"], ["-qq"], ["-v"], ["--quiet"]])
def test_verbosity_is_accepted_after_the_command(flags: list[str]) -> None:
    args = build_parser().parse_args(["info", *flags])
    assert args.command == "info"
    assert (args.verbose, args.quiet) != (0, 0)


def test_verbosity_before_the_command_is_kept() -> None:
    args = build_parser().parse_args(["-q", "info"])
    assert args.quiet == 1
    assert args.verbose == 0


def _failing_command(error: BaseException) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise error

    return run


def test_internal_error_says_it_is_a_bug_and_logs_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import crossmodal.apps.cli.info as info

    monkeypatch.setenv("CROSSMODAL_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(info, "run", _failing_command(KeyError("fingerprint")))
    code = main(["info"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == EXIT_INTERNAL == 3
    assert "this is a bug" in line
    assert "KeyError" in line
    (log,) = (tmp_path / "logs").iterdir()
    assert str(log) in line
    text = log.read_text()
    assert "Traceback" in text
    assert "KeyError: 'fingerprint'" in text


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/index/x"), "free some space"),
        (PermissionError(errno.EACCES, "Permission denied", "/data/out"), "permissions"),
    ],
)
def test_environment_errors_are_one_line_usage_errors(
    error: OSError, needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import crossmodal.apps.cli.info as info

    monkeypatch.setattr(info, "run", _failing_command(error))
    assert main(["info"]) == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert needle in line
    assert error.filename in line


@pytest.mark.parametrize(
    "argv",
    [
        ["index", "--batch-size", "0"],
        ["index", "--batch-size", "-3"],
        ["index", "--hop", "0"],
        ["index", "--hop", "1e-12"],
        ["index", "--hop", "nan"],
        ["index", "--hop", "-inf"],
        ["recommend", "q.mp4", "-k", "0"],
        ["find-video", "q.wav", "-k", "-1"],
        ["find-video", "q.wav", "-k", "99999999999"],
        ["evaluate", "--batch-size", "0"],
        ["synth", "out", "--clips", "0"],
    ],
)
def test_bad_numbers_are_refused_before_anything_loads(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The checkpoint does not exist: the argument must be refused first.
    full = [*argv, "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")]
    if argv[0] in ("recommend", "find-video"):
        full = [*argv, "--index", str(tmp_path / "missing")]
    elif argv[0] == "synth":
        full = argv
    elif argv[0] == "evaluate":
        full = [*argv, "--checkpoint", str(tmp_path / "missing.pt")]
    with pytest.raises(SystemExit) as exc:
        main(full)
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "missing" not in err.splitlines()[-1]
    assert argv[1] in err.splitlines()[-1] or argv[-2] in err.splitlines()[-1]


def test_refused_checkpoint_never_advises_weights_only_false(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "model.pt"
    torch.save({"format": 1, "payload": argparse.Namespace(x=1)}, bad)
    code = main(["index", "--checkpoint", str(bad), "--music", str(tmp_path), "--out", "o"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == EXIT_USAGE
    assert "weights_only=False" not in line
    assert "refuses to unpickle" in line
    assert "argparse.Namespace" in line


def test_progress_bars_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    setup_logging(0)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress_bars()
    monkeypatch.setattr("sys.stderr", Tty())
    assert progress_bars()
    setup_logging(-1)
    assert not progress_bars()
    setup_logging(0)


def test_cli_outputs_honour_the_umask(tmp_path: Path) -> None:
    from crossmodal.fileio import atomic_write_text

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "report.html", "<p>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o640
