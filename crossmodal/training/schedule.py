"""Learning-rate schedule: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    ``(step + 1) / warmup_steps`` during warm-up, then ``min_ratio + (1 - min_ratio) ·
    (1 + cos(π·p)) / 2`` with ``p`` the progress through the remaining steps; constant at
    ``min_ratio`` past ``total_steps``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
