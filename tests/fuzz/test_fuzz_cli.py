"""Random command lines: a usage error is one line with exit code 2, never a traceback
or an internal error, and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossmodal.apps.cli import EXIT_USAGE, main

number_text = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "1e-12", "1e400", "nan", "-inf", "0x10", "", " 3", "٣", "1_000"]),
    st.text(max_size=6),
)
path_text = st.one_of(
    st.text(min_size=1, max_size=12).filter(lambda t: not t.startswith("-")),
    st.sampled_from(["a\x00b", "\udcff", "\x1b[31m", "/", ".", "..", "/dev/null", "~"]),
)
options = {
    "index": ["--batch-size", "--hop"],
    "recommend": ["-k"],
    "find-video": ["-k"],
    "evaluate": ["--batch-size", "--segments", "--chunk-size"],  # --segments: checked in run
}


@given(
    command=st.sampled_from(sorted(options)),
    values=st.lists(number_text, min_size=1, max_size=3),
    path=path_text,
)
def test_bad_command_lines_are_one_line_usage_errors(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    command: str,
    values: list[str],
    path: str,
) -> None:
    capsys.readouterr()
    work = tmp_path_factory.mktemp("cli")
    missing = str(work / "missing")
    argv = [command]
    if command in ("recommend", "find-video"):
        argv += [path, "--index", missing]
    elif command == "index":
        argv += ["--checkpoint", missing, "--music", path, "--out", str(work / "out")]
    else:
        argv += ["--checkpoint", missing]
    for option, value in zip(options[command] * 3, values, strict=False):
        argv += [f"{option}={value}"]
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with pytest.raises(SystemExit) as exc:
            raise SystemExit(main(argv))
    finally:
        os.chdir(cwd)
    assert exc.value.code == EXIT_USAGE, argv
    assert not (work / "out").exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # argparse prints its usage first; the error itself is the last line, and only one.
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, err


def test_the_error_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["index", "--checkpoint", str(tmp_path), "--out", "o", "--hop", "1e-12"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("crossmodal index: error: argument --hop")
