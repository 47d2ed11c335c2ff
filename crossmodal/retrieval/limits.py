"""Bounds on the work one file may ask of the indexer (and of a query).

A hop far below the window only embeds near-copies of the same window and multiplies
time and memory (``--hop 1e-12`` would ask for ~10^13 windows of a 12-s file); a file
with more windows than :data:`MAX_WINDOWS_PER_FILE` is refused with the hop it needs.
Kept apart from the indexer so the CLI can check arguments without importing torch.
"""

from __future__ import annotations

import math

# Absolute floor for --hop, checked when the command line is parsed.
MIN_HOP_SECONDS = 0.01
# The hop must also be at least window / HOP_FRACTION (checked once the model is loaded).
HOP_FRACTION = 64
# Windows one file may have: 20k windows at the default 2-s hop is 11 hours of media.
MAX_WINDOWS_PER_FILE = 20_000


def check_hop(hop: float, window: float) -> float:
    """``hop`` if it is finite and at least ``max(MIN_HOP_SECONDS, window / HOP_FRACTION)``,
    else ``ValueError`` with a message naming the smallest hop allowed."""
    floor = max(MIN_HOP_SECONDS, window / HOP_FRACTION)
    if not (math.isfinite(hop) and hop >= floor):
        raise ValueError(
            f"hop {hop:g} s is too small for the model's {window:g}-s window: use a hop of at "
            f"least {floor:g} s (1/{HOP_FRACTION} of the window)"
        )
    return float(hop)


def min_hop_for(duration: float, window: float) -> float:
    """The smallest hop that keeps a file of ``duration`` seconds within the window cap."""
    return max(duration - window, 0.0) / (MAX_WINDOWS_PER_FILE - 2)
