"""Default training with moods (a vibe part that predicts moods) and without labels
(instance level only, one log line), on the tiny corpus."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from crossmodal.checkpoint import load_checkpoint
from crossmodal.model import CrossModalModel
from tests.training.helpers import state_digest
from tests.training.test_trainer import MakeConfig


def test_default_run_has_a_vibe_part_that_predicts_the_moods(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    from crossmodal.training import Trainer

    trainer = Trainer(make_config(epochs=1), tmp_path)
    assert list(trainer.objective.keys.values()) == ["track", "track", "label"]
    result = trainer.fit()
    assert result.steps == 3
    model = CrossModalModel.load(tmp_path / "model.pt")
    assert model.layout.has_vibe
    assert model.config.moods == list(trainer.train_set.labels)
    assert len(model.config.moods) == 6
    # model.pt is best.pt's model, mood centres included (the vibe term's proxies).
    best = load_checkpoint(tmp_path / "best.pt")
    assert state_digest(model.state_dict()) == state_digest(best["state_dict"])
    proxies = [v for k, v in best["objective"].items() if k.startswith("terms.normface_label")]
    (weight,) = proxies
    centres = weight / weight.norm(dim=1, keepdim=True)
    assert (model.mood_prototypes - centres).abs().max() < 1e-6
    assert "category" in summary_val(tmp_path)
    # The sync gate is calibrated on the best model's own validation pairs and stored.
    from crossmodal.embedding_layout import calibrate_gate
    from crossmodal.inference import embed_dataset

    val = embed_dataset(model, trainer.val_set, batch_size=8)
    assert model.config.sync_gate is not None
    assert model.layout.gate == model.config.sync_gate
    expected = calibrate_gate(val.video, val.music, val.tracks, model.layout)
    assert abs(model.config.sync_gate - expected) < 1e-5


def summary_val(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "summary.json").read_text())["val"]


def test_a_corpus_without_labels_trains_the_instance_level_with_one_log_line(
    make_config: MakeConfig, corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from crossmodal.data import read_manifest, write_manifest
    from crossmodal.training import Trainer

    records = [replace(r, label=None) for r in read_manifest(corpus)]
    manifest = write_manifest(records, corpus.parent / "unlabelled.jsonl")
    with caplog.at_level(logging.INFO, logger="crossmodal"):
        trainer = Trainer(make_config(epochs=1, **{"data.manifest": str(manifest)}), tmp_path)
    notes = [r.getMessage() for r in caplog.records if "no label" in r.getMessage()]
    assert notes == [
        "some training clips have no label: training the instance level only "
        "(mood terms normface left out, no vibe part)"
    ]
    assert list(trainer.objective.terms) == ["info_nce", "npair"]
    assert trainer.fit().steps == 3
    model = CrossModalModel.load(tmp_path / "model.pt")
    assert not model.layout.has_vibe
    assert model.embed_dim == 16


def test_a_gate_in_the_config_is_ignored_and_training_records_its_own(
    make_config: MakeConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from crossmodal.embedding_layout import GATE_QUANTILE
    from crossmodal.training.trainer import Trainer

    cfg = make_config(epochs=1, **{"model.sync_gate": 0.3, "model.sync_gate_quantile": 0.9})
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(cfg, tmp_path)
    assert "model.sync_gate 0.3 (quantile 0.9) ignored" in caplog.text
    assert (trainer.cfg.model.sync_gate, trainer.cfg.model.sync_gate_quantile) == (None, None)
    trainer.fit()
    model = CrossModalModel.load(tmp_path / "model.pt")
    assert model.config.sync_gate is not None  # calibrated on the validation clips
    assert model.config.sync_gate_quantile == GATE_QUANTILE
