"""Progress of a training epoch: a live bar on a terminal, sparse log lines elsewhere.

On a terminal (stderr is a TTY) a tqdm bar shows batches, loss and clips/s. When stderr
goes to a file or a CI log, a bar would write a carriage-return update many times a
second into it; instead one INFO line is logged every ``interval`` seconds (default 30)
and at the end of the epoch. ``-q`` hides both.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

from crossmodal.logging_utils import progress_disabled

log = logging.getLogger(__name__)


def live_bars() -> bool:
    """Whether tqdm bars should be drawn: stderr is a terminal and not quiet mode."""
    return not progress_disabled() and sys.stderr.isatty()


class EpochProgress:
    """``update()`` once per batch, ``set_postfix(loss=…, clips_s=…)`` when known,
    ``close()`` at the end. ``enabled=False`` (e.g. ranks other than 0) shows nothing."""

    def __init__(
        self, total: int, initial: int, desc: str, enabled: bool = True, interval: float = 30.0
    ) -> None:
        self.total = total
        self.done = initial
        self.desc = desc
        self.interval = interval
        self.postfix: dict[str, str] = {}
        self.enabled = enabled and not progress_disabled()
        self._bar = (
            tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False)
            if self.enabled and live_bars()
            else None
        )
        self._last_line = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last_line >= self.interval:
            self._line()

    def set_postfix(self, **values: str) -> None:
        self.postfix = values
        if self._bar is not None:
            self._bar.set_postfix(values)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.done > 0:
            self._line()

    def _line(self) -> None:
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        log.info("%s: %d/%d batches%s", self.desc, self.done, self.total, extra)
        self._last_line = time.monotonic()
