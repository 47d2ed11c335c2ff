"""Argument types that validate numbers when the command line is parsed.

A bad value is refused by argparse (exit code 2, one line naming the option) before a
model loads or a query decodes: ``--batch-size 0``, ``-k -1``, ``--hop 1e-12``, ``nan``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]`` (no upper bound for None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(
    low: float, high: float | None = None, *, low_inclusive: bool = True, why: str = ""
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[low, high]`` (``(low, high]`` when
    ``low_inclusive`` is False); ``why`` is added to the error (e.g. the reason for a minimum)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value < low if low_inclusive else value <= low
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            relation = ">=" if low_inclusive else ">"
            bound = f"{relation} {low:g}" + (f" and <= {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(
                f"must be a finite number {bound}, got {text}{f' ({why})' if why else ''}"
            )
        return value

    parse.__name__ = "number"
    return parse


# Shared limits: results per query and items per batch beyond these are surely a mistake
# (faiss allocates k results per query up front; a batch is held in memory at once).
MAX_K = 10_000
MAX_BATCH = 4096

positive_int = int_range(1)
batch_size = int_range(1, MAX_BATCH)
