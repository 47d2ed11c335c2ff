"""The default time bound of a convergence run (``budget.max_minutes``)."""

from __future__ import annotations

import pytest

from crossmodal.config import ConfigError, load_config
from crossmodal.training.config import TrainConfig
from crossmodal.training.trainer import Trainer


def test_time_limit_defaults_to_the_budgets_for_convergence_runs_only() -> None:
    assert TrainConfig().time_limit == 9.0
    assert load_config(TrainConfig, None, ["--epochs", "3"]).time_limit is None
    assert load_config(TrainConfig, None, ["--max_minutes", "30"]).time_limit == 30
    assert load_config(TrainConfig, None, ["--epochs", "3", "--max_minutes", "2"]).time_limit == 2
    assert load_config(TrainConfig, None, ["--budget.max_minutes", "null"]).time_limit is None
    with pytest.raises(ConfigError, match=r"budget\.max_minutes must be > 0"):
        load_config(TrainConfig, None, ["--budget.max_minutes", "0"])


def test_a_convergence_run_stops_at_the_budgets_time_limit(make_config, tmp_path) -> None:
    cfg = make_config(epochs=None, **{"budget.max_minutes": 1e-6})
    result = Trainer(cfg, tmp_path).fit()
    assert (result.steps, result.stop_reason) == (1, "time")
