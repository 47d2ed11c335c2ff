"""The training budget: the convergence schedule on its own (scores fed by hand), then
end to end on the tiny corpus: early stopping stops, ends annealed, and a resumed
early-stopping run repeats the uninterrupted one."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from crossmodal.checkpoint import load_checkpoint
from crossmodal.config import ConfigError
from crossmodal.training import Trainer
from crossmodal.training.budget import Budget
from crossmodal.training.config import BudgetConfig, TrainConfig
from crossmodal.training.metrics_log import read_metrics
from tests.training.helpers import state_digest

MakeConfig = Callable[..., TrainConfig]


def budget_of(epochs: int | None = None, validates: bool = True, **fields) -> Budget:
    cfg = TrainConfig(epochs=epochs, budget=BudgetConfig(**fields))
    return Budget(cfg, steps_per_epoch=5, validates=validates)


def drive(budget: Budget, scores: Callable[[int], float], limit: int = 10_000) -> tuple[int, str]:
    """Step the budget like the trainer does, feeding ``scores(step)`` at validations."""
    for step in range(1, limit):
        if budget.validation_due(step):
            budget.observe(step, scores(step))
        reason = budget.after_step(step)
        if reason is not None:
            return step, reason
    raise AssertionError("the budget never stopped")


def test_fixed_epochs_is_warmup_then_cosine_over_the_epochs() -> None:
    budget = budget_of(epochs=4)  # 20 steps, warm-up round(0.05 · 20) = 1
    assert not budget.converging
    assert budget.lr_factor(0) == 1.0
    assert budget.lr_factor(19) == pytest.approx(
        0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * 18 / 19))
    )
    assert not any(budget.validation_due(s) for s in range(40))


def test_a_plateau_starts_a_cooldown_that_ends_at_the_floor() -> None:
    budget = budget_of(min_steps=40, eval_every_steps=10, patience_steps=30, cooldown_fraction=0.25)
    # Improves until step 50, flat after: patience runs out at step 80.
    step, reason = drive(budget, lambda s: min(s, 50) / 100)
    assert reason == "converged"
    assert budget.state.best_step == 50
    assert budget.state.cooldown_start == 80
    assert budget.state.cooldown_steps == 20  # 0.25 · 80
    assert step == 100
    # warm-up over 0.05 · min_steps = 2 steps, full rate until the cool-down, then cosine
    assert [budget.lr_factor(s) for s in (0, 1, 2, 79, 80)] == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert budget.lr_factor(90) == pytest.approx(0.02 + 0.98 * 0.5)
    assert budget.lr_factor(100) == pytest.approx(0.02)
    assert budget.validation_due(100)


def test_no_cooldown_before_min_steps_and_gains_below_min_delta_do_not_count() -> None:
    budget = budget_of(min_steps=200, eval_every_steps=10, patience_steps=20, min_delta=0.01)
    # Gains of 0.001 per validation: each below min_delta, so the patience of 20 steps
    # runs out from step 30 on; the cool-down waits for min_steps.
    step, reason = drive(budget, lambda s: s / 10_000)
    assert (budget.state.cooldown_start, reason, step) == (200, "converged", 240)
    # the same scores with min_delta 0 are gains at every validation: on to max_steps
    budget = budget_of(min_steps=200, eval_every_steps=10, patience_steps=20, min_delta=0.0)
    assert drive(budget, lambda s: s / 10_000) == (3000, "max_steps")


def test_a_run_that_keeps_improving_cools_down_to_end_at_max_steps() -> None:
    budget = budget_of(min_steps=10, max_steps=600, eval_every_steps=10, cooldown_fraction=0.2)
    step, reason = drive(budget, lambda s: s / 1000)
    assert (step, reason) == (600, "max_steps")
    assert budget.state.cooldown_start == 500  # 500 + 0.2 · 500 = 600


def test_without_validation_a_convergence_budget_trains_min_steps() -> None:
    budget = budget_of(validates=False, min_steps=30)
    assert not budget.converging
    assert drive(budget, lambda s: 0.0) == (30, "no_validation")
    assert budget.lr_factor(30) == pytest.approx(0.02)


def test_budget_fields_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"budget\.max_steps"):
        BudgetConfig(min_steps=100, max_steps=50)
    with pytest.raises(ConfigError, match="cooldown_fraction"):
        BudgetConfig(cooldown_fraction=0.0)


# -- end to end -------------------------------------------------------------------------------
def converging(make_config: MakeConfig) -> TrainConfig:
    """A convergence budget on the tiny corpus (3 steps per epoch) that cannot improve
    after its first validation (min_delta 1): validations at steps 2, 4, 6, the cool-down
    from step 6 over 3 steps, a last validation at step 9."""
    return make_config(
        epochs=None,
        **{
            "budget.min_steps": 3,
            "budget.eval_every_steps": 2,
            "budget.patience_steps": 4,
            "budget.min_delta": 1.0,
            "budget.cooldown_fraction": 0.5,
            "budget.max_steps": 100,
            "optim.lr": 5e-3,
        },
    )


@pytest.fixture(scope="module")
def converged_run(tmp_path_factory: pytest.TempPathFactory, corpus: Path, cache_dir: Path):
    from crossmodal.config import load_config
    from tests.training.helpers import tiny_overrides

    overrides = tiny_overrides(corpus, cache_dir)
    cfg = converging(lambda **f: load_config(TrainConfig, None, overrides + _flat(f)))
    run_dir = tmp_path_factory.mktemp("converged")
    return Trainer(cfg, run_dir).fit(), run_dir


def _flat(fields: dict) -> list[str]:
    out: list[str] = []
    for key, value in fields.items():
        out += [f"--{key}", json.dumps(value)]
    return out


def test_early_stopping_stops_annealed_and_keeps_the_best_model(converged_run) -> None:
    result, run_dir = converged_run
    assert (result.steps, result.stop_reason) == (9, "converged")
    assert "converged" in result.stop_message
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if r["kind"] == "val"] == [2, 4, 6, 8, 9]
    lrs = {r["step"]: r["lr"] for r in records if r["kind"] == "train"}
    assert lrs[6] == pytest.approx(5e-3)  # full rate until the cool-down
    assert lrs[9] == pytest.approx(0.02 * 5e-3)  # annealed at the end
    best = load_checkpoint(run_dir / "best.pt")
    val_scores = [r["score"] for r in records if r["kind"] == "val"]
    assert best["best_score"] == max(val_scores)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "converged"


@pytest.mark.parametrize("stop_after_epoch", [1, 2])
def test_a_resumed_early_stopping_run_repeats_the_uninterrupted_one(
    make_config: MakeConfig, tmp_path: Path, converged_run, stop_after_epoch: int
) -> None:
    _, reference = converged_run
    cfg = converging(make_config)
    first = Trainer(cfg, tmp_path).fit(stop_after_epoch=stop_after_epoch)
    assert first.stop_reason == "stop_after_epoch"
    resumed = Trainer(cfg, tmp_path, resume=True)
    # The gate calibrated on the saved weights comes back with them, before any validation.
    saved_gate = load_checkpoint(tmp_path / "last.pt")["config"]["sync_gate"]
    assert saved_gate is not None
    assert resumed.model.config.sync_gate == saved_gate
    result = resumed.fit()
    assert (result.steps, result.stop_reason) == (9, "converged")
    for name in ("last.pt", "best.pt"):
        ours, theirs = load_checkpoint(tmp_path / name), load_checkpoint(reference / name)
        assert state_digest(ours["state_dict"]) == state_digest(theirs["state_dict"]), name
        assert ours["budget"] == theirs["budget"], name
        # The sync gate goes with the weights it was calibrated on.
        assert ours["config"]["sync_gate"] is not None, name
        assert ours["config"]["sync_gate"] == theirs["config"]["sync_gate"], name
    assert [
        (r["kind"], r["step"], r.get("loss"), r.get("score"))
        for r in read_metrics(tmp_path / "metrics.jsonl")
    ] == [
        (r["kind"], r["step"], r.get("loss"), r.get("score"))
        for r in read_metrics(reference / "metrics.jsonl")
    ]


def test_resuming_a_finished_run_trains_no_further(make_config: MakeConfig, tmp_path: Path) -> None:
    cfg = converging(make_config)
    Trainer(cfg, tmp_path).fit()
    again = Trainer(cfg, tmp_path, resume=True).fit()
    assert (again.steps, again.stop_reason) == (9, "converged")


def test_convergence_rewinds_to_the_best_model_before_cooling_down(
    make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation scores fixed by step: best at step 2, worse after; the best model is
    # saved as the real validation does.
    scores = {2: 0.9, 4: 0.5, 6: 0.4, 8: 0.95, 9: 0.95}
    saved: dict[int, str] = {}

    def fake_score(self: Trainer, metrics) -> float:
        score = scores[self.step]
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.save("best.pt")
            saved[self.step] = state_digest(self.model.state_dict())
        return score

    rewound: list[tuple[int, str]] = []
    real_rewind = Trainer._rewind_to_best

    def spy(self: Trainer) -> None:
        real_rewind(self)
        rewound.append((self.step, state_digest(self.model.state_dict())))

    monkeypatch.setattr(Trainer, "_validation_score", fake_score)
    monkeypatch.setattr(Trainer, "_rewind_to_best", spy)
    cfg = converging(make_config)
    cfg.budget.min_delta = 0.0
    result = Trainer(cfg, tmp_path).fit()
    assert (result.steps, result.stop_reason) == (9, "converged")
    assert len(rewound) == 1
    step, digest = rewound[0]
    assert step == 6
    # the cool-down starts from step 2's weights, the best validated until then
    assert sorted(saved) == [2, 8]
    assert digest == saved[2]


def test_rewind_loads_the_best_checkpoint(make_config: MakeConfig, tmp_path: Path) -> None:
    trainer = Trainer(make_config(epochs=None), tmp_path)
    best_state = state_digest(trainer.model.state_dict())
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    trainer.save("best.pt")
    with torch.no_grad():
        for param in trainer.model.parameters():
            param.add_(1.0)
    trainer.step = 5
    trainer._rewind_to_best()
    assert state_digest(trainer.model.state_dict()) == best_state
