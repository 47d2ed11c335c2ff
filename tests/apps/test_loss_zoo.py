"""The fair loss zoo's protocol (crossmodal/apps/notebooks/loss_zoo.py): the same budget
for every registered loss, grids from the table or the constructor, a choice made on val
only, and the test split touched only after the choice."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from crossmodal.apps.notebooks import loss_zoo
from crossmodal.apps.notebooks.loss_zoo import (
    DEFAULT_BUDGET,
    GRIDS,
    LossZoo,
    Setting,
    Trial,
    generic_grid,
    markdown_table,
    select,
    tuning_grid,
    tuning_settings,
)
from crossmodal.errors import CrossmodalError
from crossmodal.losses import create_loss, list_losses, loss_kind
from crossmodal.losses.registry import LOSSES


def _build(setting: Setting) -> Any:
    extra = {"embedding_dim": 8, "num_classes": 3} if loss_kind(setting.loss) == "proxy" else {}
    return create_loss(setting.loss, **extra, **dict(setting.params))


@pytest.mark.parametrize("name", list_losses())
def test_every_registered_loss_gets_the_same_budget_of_distinct_buildable_settings(
    name: str,
) -> None:
    settings = tuning_settings(name)
    assert len(settings) == DEFAULT_BUDGET
    assert settings[0] == Setting(name)
    assert settings[0].is_default
    assert len(set(settings)) == DEFAULT_BUDGET
    parameter = tuning_grid(name)[0]
    defaults = LOSSES.options(name)
    for setting in settings[1:]:
        ((key, value),) = setting.params
        assert key == parameter
        assert value != defaults[key]
        loss = _build(setting)  # the loss takes the value
        assert loss is not None


def test_every_table_entry_names_a_registered_loss_and_one_of_its_options() -> None:
    for name, (parameter, values) in GRIDS.items():
        assert name in list_losses(), name
        assert parameter in LOSSES.options(name), name
        assert len(values) >= DEFAULT_BUDGET, name  # a default among them still fills it


def test_a_table_entry_that_no_longer_fits_the_loss_is_an_error_naming_the_fix() -> None:
    with pytest.raises(CrossmodalError, match="GRIDS"):
        tuning_grid("contrastive", {"contrastive": ("no_such_option", (1.0, 2.0))})


def test_a_loss_without_an_entry_tunes_its_scale_like_parameter_by_multiples_of_the_default() -> (
    None
):
    # info_nce: temperature (float 0.07 by default), not max_scale (also a float)
    parameter, values = generic_grid("info_nce")
    default = LOSSES.options("info_nce")["temperature"]
    assert parameter == "temperature"
    assert values == pytest.approx([default / 2, default * 2, default / 4, default * 4])
    settings = tuning_settings("info_nce", budget=3)
    assert [s.label for s in settings] == [
        "defaults",
        f"temperature={default / 2:g}",
        f"temperature={default * 2:g}",
    ]


def test_the_generic_choice_reads_the_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    # A future loss (e.g. SigLIP) with an "init_temperature", a bool and an int option.
    options = {"learnable": True, "bias_init": -10.0, "init_temperature": 0.1, "k": 3}
    monkeypatch.setattr(loss_zoo, "_options", lambda name: options)
    assert generic_grid("future") == ("init_temperature", (0.05, 0.2, 0.025, 0.4))
    # Nothing scale-like: its first float option. Nothing float: nothing to tune.
    monkeypatch.setattr(loss_zoo, "_options", lambda name: {"bias_init": -10.0, "k": 3})
    assert generic_grid("future")[0] == "bias_init"
    monkeypatch.setattr(loss_zoo, "_options", lambda name: {"k": 3, "flag": True, "z": 0.0})
    assert generic_grid("future") is None
    assert tuning_settings("future") == [Setting("future")]


def test_a_grid_value_equal_to_the_default_is_skipped_and_the_budget_still_filled() -> None:
    default = LOSSES.options("contrastive")["neg_margin"]
    a, b, c = default + 0.5, default + 0.7, default + 0.9
    grids = {"contrastive": ("neg_margin", (default, a, a, b, c))}
    settings = tuning_settings("contrastive", budget=3, grids=grids)
    assert [s.params for s in settings] == [(), (("neg_margin", a),), (("neg_margin", b),)]
    with pytest.raises(CrossmodalError, match="budget"):
        tuning_settings("contrastive", budget=0)


def _trial(setting: Setting, score: float, tmp: Path = Path("/nonexistent")) -> Trial:
    return Trial(setting, score, 10, 1.0, tmp, "built")


def test_select_takes_the_best_val_score_the_earliest_on_a_tie_and_never_nan() -> None:
    a, b, c = (Setting("triplet_margin", (("margin", m),)) for m in (0.1, 0.4, 0.05))
    default = Setting("triplet_margin")
    assert select([_trial(default, 0.3), _trial(a, 0.5), _trial(b, 0.2)]).setting == a
    assert select([_trial(default, 0.5), _trial(a, 0.5)]).setting == default
    assert select([_trial(default, math.nan), _trial(c, 0.1)]).setting == c
    assert select([_trial(default, 0.1), _trial(c, math.nan)]).setting == default
    with pytest.raises(CrossmodalError):
        select([])


class _ScriptedZoo(LossZoo):
    """The protocol's driver with the training and the test evaluation replaced by
    scripts: val scores that prefer one setting, test scores that prefer another, and a
    log of the order of events."""

    def __init__(self, val: dict[str, float], test: dict[str, float]) -> None:
        super().__init__(assets=None, base=None)  # type: ignore[arg-type]
        self.val, self.test, self.events = val, test, []

    def trial(self, setting: Setting) -> Trial:
        self.events.append(("val", setting.label))
        return _trial(setting, self.val.get(setting.label, 0.0))

    def test_metrics(self, trial: Trial) -> dict[str, float]:
        self.events.append(("test", trial.setting.label))
        return {"v→m R@1": self.test.get(trial.setting.label, 0.0)}


def test_the_choice_follows_val_and_test_is_read_only_after_it_for_two_runs() -> None:
    labels = [s.label for s in tuning_settings("contrastive")]
    val = dict(zip(labels, (0.1, 0.2, 0.6, 0.3), strict=True))
    # The test split would prefer the last setting: a choice that peeked would take it.
    test = dict(zip(labels, (0.0, 0.1, 0.2, 0.9), strict=True))
    zoo = _ScriptedZoo(val, test)
    (result,) = zoo.run(["contrastive"])
    assert result.chosen.setting.label == labels[2]
    assert result.test_tuned == {"v→m R@1": 0.2}
    assert result.test_default == {"v→m R@1": 0.0}
    assert zoo.events == [("val", label) for label in labels] + [
        ("test", labels[0]),
        ("test", labels[2]),
    ]
    assert result.tuning_steps == 40
    assert result.tuning_seconds == 4.0


def test_when_the_defaults_win_test_is_read_once() -> None:
    labels = [s.label for s in tuning_settings("info_nce")]
    zoo = _ScriptedZoo(dict.fromkeys(labels, 0.5), dict.fromkeys(labels, 0.5))
    (result,) = zoo.run(["info_nce"])
    assert result.chosen is result.default
    assert [e for e in zoo.events if e[0] == "test"] == [("test", "defaults")]


def test_the_default_run_is_the_whole_registry_in_order() -> None:
    zoo = _ScriptedZoo({}, {})
    results = zoo.run()
    assert [r.loss for r in results] == list_losses()
    assert [r.kind for r in results] == [loss_kind(n) for n in list_losses()]
    assert {len(r.trials) for r in results} == {DEFAULT_BUDGET}


@pytest.mark.slow
def test_on_a_real_corpus_the_val_score_is_the_val_split_and_test_media_are_never_read(
    tmp_path: Path,
) -> None:
    """Tune on a tiny corpus whose test media have been moved away (tuning must not
    need them), check each trial's score against the val split embedded independently,
    then bring the test media back and measure the choice on test."""
    import torch

    from crossmodal.apps.notebooks.assets import AssetConfig, NotebookAssets
    from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings
    from crossmodal.inference import embed_dataset
    from crossmodal.model import CrossModalModel

    torch.set_num_threads(1)
    config = AssetConfig(clips=18, split=(8, 5, 5), size=32, library_clips=0, batch_size=4)
    assets = NotebookAssets(config, root=tmp_path)
    assets.corpus()
    test_media = {p for r in assets.records("test") for p in (r.video, r.audio) if p is not None}
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for path in test_media:
        shutil.move(path, hidden / path.name)
    protocol = {"epochs": 2, "frozen_backbones": True, "frozen_windows": 1, "eval_every": 2}
    zoo = LossZoo(assets, assets.train_config(), protocol, budget=2)
    result = zoo.tune("triplet_margin")
    assert [t.setting for t in result.trials] == tuning_settings("triplet_margin", budget=2)
    for trial in result.trials:
        model = CrossModalModel.load(trial.run_dir / "model.pt").eval()
        e = embed_dataset(model, assets.dataset("val", model))
        report = evaluate_embeddings(e.video, e.music, e.tracks, with_nmi=False)
        expected = (report["video_to_music"]["mAP"] + report["music_to_video"]["mAP"]) / 2
        assert trial.val_score == pytest.approx(expected, abs=1e-6)
        assert trial.steps == 2 * (8 // 4)
        summary = json.loads((trial.run_dir / "summary.json").read_text())
        assert summary["best_score"] == trial.val_score
    assert result.chosen is select(result.trials)
    for path in test_media:
        shutil.move(hidden / path.name, path)
    metrics = zoo.test_metrics(result.chosen)
    assert 1 <= metrics["v→m MedR"] <= 5
    assert 0 <= metrics["m→v R@1"] <= 1
    # Reused from the cache the next time, with the same score.
    fresh = NotebookAssets(config, root=tmp_path)
    again = LossZoo(fresh, fresh.train_config(), protocol, budget=2).tune("triplet_margin")
    assert [t.state for t in again.trials] == ["reused", "reused"]
    assert [t.val_score for t in again.trials] == [t.val_score for t in result.trials]


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_a_table_grid_still_fills_the_budget_when_a_new_default_is_one_of_its_values(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parameter, values = GRIDS[name]
    for value in values:
        moved = {**LOSSES.options(name), parameter: value}
        monkeypatch.setattr(loss_zoo, "_options", lambda _name, moved=moved: moved)
        settings = tuning_settings(name)
        assert len(settings) == DEFAULT_BUDGET, (name, value)
        assert all(s.params != ((parameter, value),) for s in settings), (name, value)


def test_the_markdown_table_has_a_row_per_loss_with_both_columns() -> None:
    labels = [s.label for s in tuning_settings("contrastive")]
    zoo = _ScriptedZoo(dict(zip(labels, (0.1, 0.6, 0.2, 0.3), strict=True)), {})
    metrics = {"v→m R@1": 0.5, "m→v R@1": 0.25, "v→m MedR": 2.0, "m→v MedR": 5.0}
    zoo.test_metrics = lambda trial: {**metrics, "mean cos, non-pairs": trial.val_score}  # type: ignore[method-assign]
    (result,) = zoo.run(["contrastive"])
    untrained = {**metrics, "v→m R@1": 0.0, "mean cos, non-pairs": -0.07}
    lines = markdown_table([result], untrained).splitlines()
    assert len(lines) == 4
    assert all(line.count("|") == 12 for line in lines)
    assert lines[2].startswith("| (untrained) | | | 0.125 | | 3.5 | | -0.07 |")
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[:3] == ["contrastive", labels[1], "0.100 → 0.600"]
    assert cells[3:9] == ["0.375", "0.375", "3.5", "3.5", "0.10", "0.60"]
    assert cells[9:] == ["40", "4.0"]


def test_a_changed_default_names_a_new_run_so_a_cached_one_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zoo = LossZoo(assets=None, base=None)  # type: ignore[arg-type]
    before = zoo.run_prefix(Setting("contrastive"))
    assert before.startswith("loss-zoo-contrastive-")
    assert zoo.run_prefix(Setting("contrastive", (("neg_margin", 1.7),))) == before
    moved = {**LOSSES.options("contrastive"), "neg_margin": 1.7}
    monkeypatch.setattr(loss_zoo, "_options", lambda name: moved)
    assert zoo.run_prefix(Setting("contrastive")) != before
