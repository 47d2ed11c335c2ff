"""Logging set-up shared by the CLI and scripts: one stderr handler, level from -v/-q."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(verbosity: int = 0) -> None:
    """Configure the ``crossmodal`` logger.

    ``verbosity`` is ``#-v - #-q``: 0 → INFO, 1+ → DEBUG, -1 or lower → WARNING.
    Progress bars (tqdm) write to stderr as well and are hidden when verbosity < 0.
    """
    if verbosity >= 1:
        level = logging.DEBUG
    elif verbosity <= -1:
        level = logging.WARNING
    else:
        level = logging.INFO
    logger = logging.getLogger("crossmodal")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if getattr(handler, "_crossmodal", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    handler._crossmodal = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
    _route_library_warnings(handler if verbosity >= 1 else None)


def _route_library_warnings(handler: logging.Handler | None) -> None:
    """Python warnings of the libraries underneath (librosa, torchaudio, decord, …) are
    details for ``-v``: they go through ``handler`` at debug verbosity and nowhere
    otherwise, never as raw lines on the terminal. What matters to the user is turned
    into our own message where it happens."""
    logging.captureWarnings(True)
    py_warnings = logging.getLogger("py.warnings")
    for old in list(py_warnings.handlers):
        if getattr(old, "_crossmodal", False):
            py_warnings.removeHandler(old)
    sink = handler if handler is not None else logging.NullHandler()
    sink._crossmodal = True  # type: ignore[attr-defined]
    py_warnings.addHandler(sink)
    py_warnings.propagate = False


def progress_disabled() -> bool:
    """True in quiet mode (progress is neither drawn nor logged)."""
    return logging.getLogger("crossmodal").getEffectiveLevel() > logging.INFO


def progress_bars() -> bool:
    """True when live progress bars should be drawn: not quiet, and stderr is a terminal.

    A redirected stderr (a log file, a pipe, CI) gets no bars: tqdm's ``\\r`` updates
    would pile up into lines of tens of kilobytes there.
    """
    stderr = sys.stderr
    return not progress_disabled() and stderr is not None and stderr.isatty()


# C0/C1 control characters (ESC starts terminal escape sequences) and DEL.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}


def printable(text: object) -> str:
    """``text`` safe to print to a terminal or log: control characters (ANSI escape
    sequences in a file name) and undecodable bytes of a file name become ``\\xNN``."""
    value = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
    value = value.translate(_CONTROL)
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte (e.g. from JSON)
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
