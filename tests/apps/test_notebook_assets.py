"""The notebooks' build-or-reuse cache: keys, validation, and stages built once under a
lock, atomically."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from crossmodal.apps.notebooks.assets import AssetConfig, NotebookAssets, cache_root
from crossmodal.apps.pipeline import DATA_FIELDS, MODEL_FIELDS
from crossmodal.errors import CrossmodalError


def test_cache_root_prefers_the_explicit_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CROSSMODAL_NOTEBOOK_CACHE", raising=False)
    assert cache_root() == tmp_path / "xdg" / "crossmodal" / "notebooks"
    monkeypatch.setenv("CROSSMODAL_NOTEBOOK_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    assert NotebookAssets().folder.parent == tmp_path / "mine"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"split": (200, 20, 70)}, "summing"),
        ({"split": (0, 20, 280)}, "at least one train"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 201}, "batch_size"),
        ({"library_duration": 3.0}, "library"),
        ({"threads": 0}, "threads"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(changes: dict, message: str) -> None:
    with pytest.raises(CrossmodalError, match=message):
        AssetConfig(**changes)


def test_each_key_follows_its_own_fields_only() -> None:
    base = AssetConfig()
    changes = [
        {"clips": 301, "split": (201, 20, 80)},
        {"split": (199, 21, 80)},
        {"seed": 1},
        {"duration": 5.0},
        {"size": 48},
        {"library_clips": 5},
        {"library_duration": 10.0},
        {"video_size": 48},
        {"epochs": 9},
        {"batch_size": 16},
        {"lr": 1e-3},
        {"train_minutes": 3.0},
    ]
    assert {name for change in changes for name in change} == set(DATA_FIELDS + MODEL_FIELDS)
    for change in changes:
        other = dataclasses.replace(base, **change)
        assert (other.data_key() != base.data_key()) == any(n in DATA_FIELDS for n in change)
        assert (other.model_key() != base.model_key()) == any(n in MODEL_FIELDS for n in change)
    for speed in ({"threads": 2}, {"workers": 2}):  # how fast, not what is built
        faster = dataclasses.replace(base, **speed)
        assert (faster.data_key(), faster.model_key()) == (base.data_key(), base.model_key())


def _build_slowly(root: str, log: str) -> None:
    def build(tmp: Path) -> None:
        tmp.mkdir()
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (tmp / "done").write_text("yes")

    NotebookAssets(root=root)._stage("thing", "thing", build)


def test_concurrent_builders_build_a_stage_once(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_build_slowly, args=(str(tmp_path / "cache"), str(log)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert len(log.read_text().splitlines()) == 1
    folder = NotebookAssets(root=tmp_path / "cache").folder
    assert (folder / "thing" / "done").read_text() == "yes"
    assert not list(folder.glob(".thing.tmp-*"))


def test_a_failed_build_leaves_nothing_and_the_next_call_builds(tmp_path: Path) -> None:
    assets = NotebookAssets(root=tmp_path)
    calls = []

    def broken(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "half").write_text("")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        assets._stage("thing", "thing", broken)
    assert sorted(p.name for p in assets.folder.iterdir()) == [".lock"]
    # A builder that died without cleaning up leaves its temporary folder behind.
    (assets.folder / ".thing.tmp-999999").mkdir()

    def build(tmp: Path) -> None:
        calls.append(tmp)
        tmp.mkdir()
        (tmp / "ok").write_text("")

    final = assets._stage("thing", "thing", build)
    assert (final / "ok").is_file()
    assert not list(assets.folder.glob(".thing.tmp-*"))
    assert assets.timings["thing"][0] == "built"
    again = NotebookAssets(root=tmp_path)
    assert again._stage("thing", "thing", build) == final
    assert len(calls) == 1
    assert again.timings["thing"][0] == "reused"


def test_trained_run_trains_each_config_once_and_drops_resume_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossmodal.training.config import LossTerm

    trained = []

    def fake_train(cfg, run_dir):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True)
        for name in ("model.pt", "last.pt", "best.pt", "metrics.jsonl", "summary.json"):
            (run_dir / name).write_text(cfg.losses[0].name)
        trained.append(cfg.losses[0].name)

    monkeypatch.setattr("crossmodal.training.trainer.train", fake_train)
    assets = NotebookAssets(root=tmp_path)
    monkeypatch.setattr(assets, "corpus", lambda: assets.folder / "corpus" / "manifest.jsonl")
    base = assets.train_config()
    first = assets.trained_run(dataclasses.replace(base, losses=[LossTerm("circle")]), "zoo")
    same = assets.trained_run(dataclasses.replace(base, losses=[LossTerm("circle")]), "zoo")
    other = assets.trained_run(dataclasses.replace(base, losses=[LossTerm("arcface")]), "zoo")
    assert first == same != other
    assert first.name.startswith("zoo-")
    assert trained == ["circle", "arcface"]
    assert sorted(p.name for p in first.iterdir()) == ["metrics.jsonl", "model.pt", "summary.json"]
    assert (other / "model.pt").read_text() == "arcface"


def test_the_two_part_model_takes_the_training_defaults_and_its_own_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossmodal.training.config import TrainConfig

    defaults = TrainConfig()
    assets = NotebookAssets(root=tmp_path)
    one = assets.train_config()
    two = assets.train_config(vibe=True, epochs=3)
    # the one-part model keeps its instance-level objective; the two-part one is
    # `crossmodal train`'s: vibe part, default blend, the mood term on the vibe part
    assert (one.model.vibe_dim, [t.name for t in one.losses]) == (0, ["info_nce", "npair"])
    assert (
        two.model.vibe_dim,
        two.model.vibe_input,
        two.model.vibe_dropout,
        two.model.blend,
    ) == (
        defaults.model.vibe_dim,
        defaults.model.vibe_input,
        defaults.model.vibe_dropout,
        defaults.model.blend,
    )
    assert two.model.vibe_dim > 0
    assert two.losses == defaults.losses
    assert [t.key for t in two.losses].count("label") == 1
    # the same towers (plus the default music tower's clip summary), data and
    # optimiser; only the epochs asked for differ
    assert two.model.music_overrides == defaults.model.music_overrides
    assert (
        dataclasses.replace(
            two.model,
            vibe_dim=0,
            vibe_input=one.model.vibe_input,
            vibe_dropout=one.model.vibe_dropout,
            blend=one.model.blend,
            music_overrides=one.model.music_overrides,
        )
        == one.model
    )
    assert (two.epochs, one.epochs) == (3, AssetConfig().epochs)
    assert (two.data, two.optim, two.batch_size) == (one.data, one.optim, one.batch_size)
    with pytest.raises(CrossmodalError, match="epochs"):
        assets.train_config(vibe=True, epochs=0)

    runs = []

    def fake_run(cfg, prefix="run", *, folder=None):
        runs.append((cfg.epochs, cfg.model.vibe_dim, prefix))
        return tmp_path / f"{prefix}-{cfg.epochs}"

    monkeypatch.setattr(assets, "trained_run", fake_run)
    assert assets.vibe_model(4) == tmp_path / "vibe-4" / "model.pt"
    assert assets.vibe_model() == tmp_path / f"vibe-{AssetConfig().epochs}" / "model.pt"
    vibe = defaults.model.vibe_dim
    assert runs == [(4, vibe, "vibe"), (AssetConfig().epochs, vibe, "vibe")]
