"""Logging set-up shared by the CLI and scripts: one stderr handler, level from -v/-q."""

from __future__ import annotations

import logging
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
    """True when progress bars should be hidden (quiet mode)."""
    return logging.getLogger("crossmodal").getEffectiveLevel() > logging.INFO
