"""How long a run trains, and the learning rate at each optimiser step.

Two budgets:

- **fixed** (``epochs`` set): ``epochs × steps_per_epoch`` steps, linear warm-up over
  ``warmup_fraction`` of them, then cosine decay to ``min_lr_ratio · lr`` at the last.
- **convergence** (the default, ``epochs`` unset): warm-up (``warmup_fraction`` of
  ``min_steps``), then a *stable* phase at the full learning rate, validated every
  ``eval_every_steps`` steps. When the validation score (mean mAP of both directions) has
  not improved by ``min_delta`` for ``patience_steps`` steps (never before ``min_steps``),
  or when the run nears ``max_steps`` or ``max_minutes``, a *cool-down* begins: cosine
  decay from the full rate to ``min_lr_ratio · lr`` over ``cooldown_fraction`` of the
  steps done so far. The run validates at its end and stops. The best validated model
  is kept. On convergence the trainer first rewinds to the best validated state, so the
  cool-down anneals the best model rather than one that has begun to overfit.

Why a cool-down rather than one cosine over a guessed length: the length is not known
when training starts (it is what convergence decides), and a cosine over ``max_steps``
would leave a run that stops early at a high learning rate, its weights still noisy. A
stable phase followed by a short decay (warm-up/stable/decay, as in Hägele et al. 2024,
"Scaling laws and compute-optimal training beyond fixed training durations") ends every
run, whatever its length, annealed like a cosine schedule of that length would.

The budget's state (phase, best score and its step, cool-down start and length) is part
of the checkpoint, and its decisions depend only on steps and validation scores, so a
resumed run repeats the uninterrupted one. Only ``max_minutes`` depends on the clock.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from crossmodal.training.config import TrainConfig
from crossmodal.training.schedule import warmup_cosine

STOP_MESSAGES = {
    None: "all epochs done",
    "converged": "converged: no validation gain of {min_delta} in {patience} steps, then cooled down",
    "max_steps": "reached max_steps ({max_steps}) after cooling down",
    "time": "time budget of {max_minutes:g} min reached",
    "no_validation": "no validation clips: trained the fixed min_steps ({min_steps}) steps",
    "stop_after_epoch": "stopped by --stop-after-epoch; --resume continues",
}


@dataclass
class BudgetState:
    """What a convergence budget has seen so far (stored in the checkpoint)."""

    best_score: float | None = None
    best_step: int = 0  # step of the last gain of at least min_delta
    cooldown_start: int | None = None
    cooldown_steps: int = 0
    cooldown_reason: str | None = None


class Budget:
    """The length and learning-rate schedule of one run; see the module docstring.

    ``steps_per_epoch``: optimiser steps of one epoch; ``validates``: whether the run
    has validation clips (a convergence budget without them trains ``min_steps`` steps
    on a warm-up + cosine schedule).
    """

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int, validates: bool) -> None:
        self.cfg = cfg.budget
        self.min_ratio = cfg.optim.min_lr_ratio
        self.fixed_steps: int | None = None
        if cfg.epochs is not None:
            self.fixed_steps = cfg.epochs * steps_per_epoch
        elif not validates:
            self.fixed_steps = self.cfg.min_steps
        length = self.fixed_steps if self.fixed_steps is not None else self.cfg.min_steps
        self.warmup_steps = round(cfg.optim.warmup_fraction * length)
        self.by_epochs = cfg.epochs is not None
        self.state = BudgetState()

    @property
    def converging(self) -> bool:
        """True for a convergence budget (validation decides the length)."""
        return self.fixed_steps is None

    # -- learning rate ------------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
        if self.fixed_steps is not None:
            return warmup_cosine(step, self.fixed_steps, self.warmup_steps, self.min_ratio)
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        start = self.state.cooldown_start
        if start is None or step < start:
            return 1.0
        progress = min((step - start) / self.state.cooldown_steps, 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    # -- decisions ---------------------------------------------------------------------------
    def validation_due(self, step: int) -> bool:
        """A convergence budget validates every ``eval_every_steps`` and at its last step."""
        if not self.converging:
            return False
        return step % self.cfg.eval_every_steps == 0 or step == self.cooldown_end

    @property
    def cooldown_end(self) -> int | None:
        """The step at which the cool-down ends (None before it starts)."""
        if self.state.cooldown_start is None:
            return None
        return self.state.cooldown_start + self.state.cooldown_steps

    @property
    def cooling(self) -> bool:
        return self.state.cooldown_start is not None

    def observe(self, step: int, score: float) -> bool:
        """Record the validation score at ``step``; True when it is the best so far. After
        ``patience_steps`` without a gain of ``min_delta`` (and past ``min_steps``) the
        cool-down starts."""
        state = self.state
        improved = state.best_score is None or score > state.best_score + self.cfg.min_delta
        if improved:
            state.best_score, state.best_step = score, step
        if (
            self.converging
            and not self.cooling
            and step >= self.cfg.min_steps
            and step - state.best_step >= self.cfg.patience_steps
        ):
            self.start_cooldown(step, "converged")
        return improved

    def start_cooldown(self, step: int, reason: str) -> None:
        """Begin the decay now: ``cooldown_fraction`` of the steps done, within max_steps."""
        if self.cooling or not self.converging:
            return
        length = max(round(self.cfg.cooldown_fraction * step), 1)
        self.state.cooldown_start = step
        self.state.cooldown_steps = max(min(length, self.cfg.max_steps - step), 1)
        self.state.cooldown_reason = reason

    def after_step(self, step: int) -> str | None:
        """Called after every optimiser step (and its validation, if due): the stop reason
        once the budget is spent, else None."""
        if not self.converging:
            if not self.by_epochs and step >= self.fixed_steps:
                return "no_validation"
            return None
        latest_start = math.floor(self.cfg.max_steps / (1.0 + self.cfg.cooldown_fraction))
        if not self.cooling and step >= latest_start:
            self.start_cooldown(step, "max_steps")
        end = self.cooldown_end
        if end is not None and step >= end:
            return self.state.cooldown_reason
        return None

    def soft_deadline(self, max_minutes: float) -> float:
        """Seconds into training after which a convergence run starts cooling down so that
        the cool-down ends near ``max_minutes``."""
        return max_minutes * 60.0 / (1.0 + self.cfg.cooldown_fraction)

    def describe(self) -> str:
        """One phrase for the start-of-training log line."""
        if self.by_epochs:
            return f"{self.fixed_steps} steps (fixed by epochs)"
        if self.fixed_steps is not None:
            return f"{self.fixed_steps} steps (min_steps; no validation)"
        c = self.cfg
        return (
            f"until convergence: validate every {c.eval_every_steps} steps, patience "
            f"{c.patience_steps}, {c.min_steps}–{c.max_steps} steps, cool-down "
            f"{c.cooldown_fraction:g} of the steps done"
        )

    def stop_message(self, reason: str | None, max_minutes: float | None) -> str:
        """Why the run stopped, in words."""
        template = STOP_MESSAGES.get(reason, str(reason))
        return template.format(
            min_delta=self.cfg.min_delta,
            patience=self.cfg.patience_steps,
            max_steps=self.cfg.max_steps,
            max_minutes=max_minutes or 0.0,
            min_steps=self.cfg.min_steps,
        )

    # -- checkpoint ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        self.state = BudgetState(**state) if state else BudgetState()
