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
