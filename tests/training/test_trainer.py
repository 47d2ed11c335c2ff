"""The training loop end to end on the tiny corpus: files, learning, resume, Ctrl-C,
non-finite losses, the frozen regime, every loss, miners, memory, the P×K sampler."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from crossmodal.checkpoint import load_checkpoint
from crossmodal.config import from_dict
from crossmodal.errors import CrossmodalError
from crossmodal.losses import WeightedSum, list_losses
from crossmodal.model import CrossModalModel, ModelConfig
from crossmodal.sampling.miners import list_miners
from crossmodal.training import Trainer, TrainingDivergedError
from crossmodal.training.config import TrainConfig
from crossmodal.training.metrics_log import read_metrics
from tests.training.helpers import state_digest, tiny_overrides

MakeConfig = Callable[..., TrainConfig]


def run_state(run_dir: Path) -> dict:
    """Digests of what a resumed run must reproduce, from its last.pt."""
    payload = load_checkpoint(run_dir / "last.pt")
    return {
        "model": state_digest(payload["state_dict"]),
        "objective": state_digest(payload["objective"]),
        "step": payload["step"],
        "epoch": payload["epoch"],
    }


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [
        (r["step"], r["loss"])
        for r in read_metrics(run_dir / "metrics.jsonl")
        if r["kind"] == "train"
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, corpus: Path, cache_dir: Path) -> Path:
    """An uninterrupted 4-epoch run (3 steps per epoch) that resumed runs must repeat."""
    from crossmodal.config import load_config

    cfg = load_config(TrainConfig, None, tiny_overrides(corpus, cache_dir, epochs=4))
    run_dir = tmp_path_factory.mktemp("reference")
    Trainer(cfg, run_dir).fit()
    return run_dir


def test_run_writes_every_file_and_learns(
    make_config: MakeConfig, tmp_path: Path, real_curves: None
) -> None:
    # An overfit case: the vibe heads read the whole output without dropout (the
    # default's clip view and dropout are there so that they do not memorise clips).
    overfit = {"optim.lr": 5e-3, "model.vibe_input": "features", "model.vibe_dropout": 0.0}
    cfg = make_config(epochs=8, **overfit)
    result = Trainer(cfg, tmp_path).fit()
    assert result.epochs_done == 8
    assert result.steps == 8 * 3  # 24 clips, batch 8
    assert result.stop_reason is None
    for name in ("config.yaml", "last.pt", "best.pt", "model.pt", "metrics.jsonl", "summary.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = from_dict(TrainConfig, yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert stored == cfg
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 24
    assert summary["epochs_done"] == 8
    assert set(summary["val"]) >= {"video_to_music", "music_to_video", "gallery_size"}

    # model.pt is best.pt's model
    best = load_checkpoint(tmp_path / "best.pt")
    model = CrossModalModel.load(tmp_path / "model.pt")
    assert state_digest(model.state_dict()) == state_digest(best["state_dict"])
    assert best["best_score"] == max(
        r["score"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "val"
    )
    # the temperature is the objective's alone (one owner), saved with the objective
    # (the default sync term sits on the sync part: OnPart → SymmetricLoss → InfoNCE)
    assert "terms.info_nce.loss.loss.log_scale" in best["objective"]
    assert not any("logit" in name for name in model.state_dict())

    # an overfit case: the loss of the last two epochs is well below that of the first two
    losses = [loss for _, loss in train_losses(tmp_path)]
    assert len(losses) == 24
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last < 0.8 * first, (first, last)


def test_resume_after_stop_after_epoch_repeats_the_run_bit_for_bit(
    make_config: MakeConfig, tmp_path: Path, reference: Path
) -> None:
    cfg = make_config(epochs=4)
    first = Trainer(cfg, tmp_path).fit(stop_after_epoch=2)
    assert (first.epochs_done, first.steps, first.stop_reason) == (2, 6, "stop_after_epoch")
    result = Trainer(cfg, tmp_path, resume=True).fit()
    assert (result.epochs_done, result.steps) == (4, 12)
    assert run_state(tmp_path) == run_state(reference)
    assert train_losses(tmp_path) == train_losses(reference)


def _as_format_1(payload: dict) -> dict:
    """A last.pt as the code before checkpoint format 2 wrote it: the model under
    ``model_config``/``model``, the former ``audio_*`` names, the model's logit scale."""
    renamed = {new: old for old, new in ModelConfig.RENAMED_KEYS.items()}
    legacy_config = {renamed.get(k, k): v for k, v in payload.pop("config").items()}
    legacy_config |= {"logit_scale_init": 1 / 0.07, "logit_scale_max": 100.0}
    prefixes = {"encoders.video.": "video_encoder.", "encoders.music.": "audio_encoder."}
    prefixes |= {"heads.video.": "video_head.", "heads.music.": "audio_head."}
    # What format 1 never had (the vibe part) passes through under today's names.
    prefixes |= {"vibe_heads.": "vibe_heads.", "mood_prototypes": "mood_prototypes"}
    state = {"log_logit_scale": torch.tensor(2.5)}
    for key, value in payload.pop("state_dict").items():
        new = next(p for p in prefixes if key.startswith(p))
        state[prefixes[new] + key[len(new) :]] = value
    train_config = dict(payload["train_config"])
    train_config["model"] = {renamed.get(k, k): v for k, v in train_config["model"].items()}
    return {
        **payload,
        "format_version": 1,
        "model_config": legacy_config,
        "model": state,
        "train_config": train_config,
    }


def test_a_run_checkpointed_in_format_1_resumes_bit_for_bit(
    make_config: MakeConfig, tmp_path: Path, reference: Path
) -> None:
    cfg = make_config(epochs=4)
    Trainer(cfg, tmp_path).fit(stop_after_epoch=2)
    last = tmp_path / "last.pt"
    torch.save(_as_format_1(torch.load(last, weights_only=True)), last)
    result = Trainer(cfg, tmp_path, resume=True).fit()
    assert (result.epochs_done, result.steps) == (4, 12)
    assert run_state(tmp_path) == run_state(reference)
    assert train_losses(tmp_path) == train_losses(reference)


@pytest.mark.parametrize("interrupt_at", [2, 4])
def test_keyboard_interrupt_mid_epoch_saves_a_resumable_checkpoint(
    make_config: MakeConfig,
    tmp_path: Path,
    reference: Path,
    monkeypatch: pytest.MonkeyPatch,
    interrupt_at: int,
) -> None:
    """A KeyboardInterrupt raised inside a step (the 3rd or 5th forward: mid-epoch)
    leaves last.pt at the last finished step; resuming finishes the run exactly."""
    calls = {"n": 0}
    original = Trainer._loss

    def interrupted(self, *args):
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_config(epochs=4), tmp_path).fit()
    payload = load_checkpoint(tmp_path / "last.pt")
    assert payload["step"] == interrupt_at
    assert (payload["epoch"], payload["epoch_step"]) == divmod(interrupt_at, 3)
    monkeypatch.setattr(Trainer, "_loss", original)
    result = Trainer(make_config(epochs=4), tmp_path, resume=True).fit()
    assert result.steps == 12
    assert run_state(tmp_path) == run_state(reference)
    assert train_losses(tmp_path) == train_losses(reference)


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(
    make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGINT mid-accumulation: the group of micro-batches is finished, last.pt
    saved, KeyboardInterrupt raised; the resumed run equals an uninterrupted one."""
    cfg = make_config(epochs=2, **{"optim.accum_steps": 2, "batch_size": 4})
    whole = tmp_path / "whole"
    Trainer(cfg, whole).fit()

    calls = {"n": 0}
    original = Trainer._loss

    def signalled(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:  # first micro-batch of the second step
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_loss", signalled)
    parted = tmp_path / "parted"
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, parted).fit()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    payload = load_checkpoint(parted / "last.pt")
    assert (payload["step"], payload["epoch_step"]) == (2, 4)
    monkeypatch.setattr(Trainer, "_loss", original)
    Trainer(cfg, parted, resume=True).fit()
    assert run_state(parted) == run_state(whole)


class NanGrad(torch.autograd.Function):
    """Identity forward, NaN gradient: a finite loss whose gradient is not."""

    @staticmethod
    def forward(ctx, value):
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.nan


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_non_finite_steps_are_skipped_with_a_warning(
    make_config: MakeConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    calls = {"n": 0}
    original = WeightedSum.forward

    def poisoned(self, *args):
        value = original(self, *args)
        calls["n"] += 1
        if calls["n"] in (2, 3):
            return value * math.nan if kind == "loss" else NanGrad.apply(value)
        return value

    monkeypatch.setattr(WeightedSum, "forward", poisoned)
    with caplog.at_level(logging.WARNING, logger="crossmodal"):
        result = Trainer(make_config(epochs=2), tmp_path).fit()
    skipped = [r.message for r in caplog.records if "step skipped" in r.message]
    assert len(skipped) == 2
    assert f"{kind} " in skipped[0] or f"{kind} norm" in skipped[0]
    assert "2 in a row" in skipped[1]
    assert result.steps == 6 - 2
    model = CrossModalModel.load(tmp_path / "model.pt")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_repeated_non_finite_losses_stop_training_and_keep_the_checkpoint(
    make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(epochs=3)
    Trainer(cfg, tmp_path).fit(stop_after_epoch=1)
    before = {name: (tmp_path / name).read_bytes() for name in ("last.pt", "best.pt")}
    original = WeightedSum.forward
    monkeypatch.setattr(WeightedSum, "forward", lambda self, *a: original(self, *a) * math.nan)
    with pytest.raises(TrainingDivergedError, match=r"3 consecutive steps.*last good checkpoint"):
        Trainer(make_config(epochs=3, max_bad_steps=3), tmp_path, resume=True).fit()
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, name


def test_time_budget_stops_mid_epoch_and_says_where_validation_belongs(
    make_config: MakeConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="crossmodal"):
        result = Trainer(make_config(max_minutes=1e-6), tmp_path).fit()
    assert (result.steps, result.stop_reason, result.stopped_early) == (1, "time", True)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validation")]
    assert len(lines) == 2
    assert lines[0].startswith("validation in epoch 1/2 at batch 1/3 (step 1):")
    # The default model has a vibe part: the mood level and the sync gate are logged too.
    assert lines[1].startswith("validation moods: MAP@R v→m ")
    assert "(sync gate " in lines[1]
    val = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "val"]
    assert [(r["step"], r["epoch"]) for r in val] == [(1, round(1 / 3, 4))]
    payload = load_checkpoint(tmp_path / "last.pt")
    assert (payload["epoch"], payload["epoch_step"]) == (0, 1)


def test_frozen_backbones_train_heads_only_and_cache_features(
    make_config: MakeConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A seed of its own: backbone weights no other test caches features of.
    cfg = make_config(frozen_backbones=True, epochs=3, frozen_windows=2, seed=11)
    with caplog.at_level(logging.INFO, logger="crossmodal"):
        trainer = Trainer(cfg, tmp_path / "a")
    assert any("(0 from the cache, 24 computed)" in r.message for r in caplog.records)
    model = trainer.model
    backbones = state_digest(
        {f"v.{k}": v for k, v in model.encoders["video"].state_dict().items()}
        | {f"a.{k}": v for k, v in model.encoders["music"].state_dict().items()}
    )
    heads = state_digest(model.heads["video"].state_dict()) + state_digest(
        model.heads["music"].state_dict()
    )
    trained = {id(p) for p in trainer.params}
    head_params = {
        id(p)
        for m in (model.heads["video"], model.heads["music"], *model.vibe_heads.values())
        for p in m.parameters()
    }
    objective_params = {id(p) for p in trainer.objective.parameters()}
    assert trained == head_params | objective_params
    assert trainer.frozen.video.shape[:2] == (24, 2)
    trainer.fit()
    after = state_digest(
        {f"v.{k}": v for k, v in model.encoders["video"].state_dict().items()}
        | {f"a.{k}": v for k, v in model.encoders["music"].state_dict().items()}
    )
    assert after == backbones
    assert heads != state_digest(model.heads["video"].state_dict()) + state_digest(
        model.heads["music"].state_dict()
    )
    saved = CrossModalModel.load(tmp_path / "a" / "model.pt")
    assert saved.is_backbone_frozen("video")
    assert saved.is_backbone_frozen("music")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="crossmodal"):
        again = Trainer(cfg, tmp_path / "b")
    assert any("(24 from the cache, 0 computed)" in r.message for r in caplog.records)
    assert torch.equal(again.frozen.video, trainer.frozen.video)
    assert torch.equal(again.frozen.audio, trainer.frozen.audio)


def test_frozen_features_equal_the_backbones_on_each_window(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    from crossmodal.data import PairedClipDataset

    trainer = Trainer(make_config(frozen_backbones=True, frozen_windows=2), tmp_path)
    fixed = PairedClipDataset(
        trainer.train_set.records,
        trainer.model.video_spec,
        trainer.model.audio_spec,
        eval_windows=2,
        labels=trainer.train_set.labels,
    )
    trainer.model.eval()
    with torch.no_grad():
        for clip in (0, 7, 23):
            for window in range(2):
                item = fixed[clip * 2 + window]
                video = trainer.model.backbone("video", item["video"][None])[0]
                audio = trainer.model.backbone("music", item["audio"][None])[0]
                torch.testing.assert_close(trainer.frozen.video[clip, window], video)
                torch.testing.assert_close(trainer.frozen.audio[clip, window], audio)
    # one window per clip and epoch, the same for both modalities, chosen by (seed, epoch)
    video, audio, tracks, _ = trainer.frozen.sample([0, 1, 2], epoch=1, device=torch.device("cpu"))
    windows = trainer.frozen.windows(1)[:3]
    assert torch.equal(video, trainer.frozen.video[torch.arange(3), windows])
    assert torch.equal(audio, trainer.frozen.audio[torch.arange(3), windows])
    assert tracks.tolist() == trainer.train_set.track_indices[:3].tolist()


@pytest.mark.parametrize("name", list_losses())
def test_every_registered_loss_trains_a_step_by_name(
    make_config: MakeConfig, tmp_path: Path, name: str
) -> None:
    # Frozen backbones: the loss is what is under test, and the features are cached.
    cfg = make_config(frozen_backbones=True, frozen_windows=1, losses=[{"name": name}])
    trainer = Trainer(cfg, tmp_path)
    heads = state_digest(trainer.model.heads["video"].state_dict())
    result = trainer.fit(stop_after_epoch=1)
    assert result.steps == 3
    assert state_digest(trainer.model.heads["video"].state_dict()) != heads
    losses = [loss for _, loss in train_losses(tmp_path)]
    assert len(losses) == 3
    assert all(math.isfinite(x) for x in losses)
    proxies = [m for m in trainer.objective.modules() if hasattr(m, "num_classes")]
    assert all(m.num_classes == 24 for m in proxies)  # one proxy per training track


def test_label_keyed_proxy_term_gets_one_proxy_per_label(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(
        frozen_backbones=True,
        frozen_windows=1,
        losses=[{"name": "info_nce"}, {"name": "arcface", "weight": 0.5, "key": "label"}],
    )
    trainer = Trainer(cfg, tmp_path)
    assert trainer.objective.keys == {"info_nce": "track", "arcface_label": "label"}
    # the six moods (the term sits on the vibe part: OnPart → SymmetricLoss → ArcFace)
    assert trainer.objective.terms["arcface_label"].loss.loss.num_classes == 6
    trainer.fit(stop_after_epoch=1)
    record = train_losses(tmp_path)
    assert record
    terms = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert all({"info_nce", "arcface_label"} <= set(r) for r in terms)
    # the InfoNCE term owns the learnable temperature; the log shows the scale it used
    scale = trainer.objective.terms["info_nce"].loss.loss.logit_scale.detach()  # OnPart → Symmetric
    assert terms[-1]["logit_scale"] == pytest.approx(float(scale), rel=1e-6)


@pytest.mark.parametrize("miner", list_miners())
def test_miners_by_name(make_config: MakeConfig, tmp_path: Path, miner: str) -> None:
    cfg = make_config(
        frozen_backbones=True,
        frozen_windows=1,
        losses=[{"name": "triplet_margin", "miner": miner}, {"name": "info_nce"}],
    )
    result = Trainer(cfg, tmp_path).fit(stop_after_epoch=1)
    assert result.steps == 3
    assert all(math.isfinite(loss) for _, loss in train_losses(tmp_path))


def test_cross_batch_memory_fills_and_resumes_exactly(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    cfg = make_config(
        epochs=3,
        frozen_backbones=True,
        frozen_windows=2,
        memory_size=12,
        memory_warmup=2,
        losses=[{"name": "multi_similarity"}, {"name": "info_nce"}],
    )
    whole = Trainer(cfg, tmp_path / "whole")
    whole.fit()
    memories = [m for m in whole.objective.modules() if type(m).__name__ == "CrossBatchMemory"]
    assert len(memories) == 4  # two terms × two directions
    assert all(int(m.num_filled) == 12 and int(m.iteration) == 9 for m in memories)
    Trainer(cfg, tmp_path / "parted").fit(stop_after_epoch=1)
    Trainer(cfg, tmp_path / "parted", resume=True).fit()
    assert run_state(tmp_path / "parted") == run_state(tmp_path / "whole")


def test_pk_sampler_draws_p_moods_times_k_clips(make_config: MakeConfig, tmp_path: Path) -> None:
    cfg = make_config(**{"data.sampler": "pk", "data.pk_per_class": 2})
    trainer = Trainer(cfg, tmp_path)
    labels = trainer.train_set.label_indices
    for epoch in range(2):
        for batch in trainer._batches(epoch):
            moods = labels[batch]
            assert len(batch) == 8
            assert len(set(moods.tolist())) == 4
            assert all((moods == m).sum() == 2 for m in set(moods.tolist()))
    result = trainer.fit()
    assert result.steps == 2 * trainer.steps_per_epoch


def test_pk_sampler_errors_are_clear(make_config: MakeConfig, tmp_path: Path) -> None:
    with pytest.raises(CrossmodalError, match="needs p=8 distinct classes"):
        Trainer(make_config(**{"data.sampler": "pk", "data.pk_per_class": 1}), tmp_path)
    with pytest.raises(CrossmodalError, match="every track has one clip"):
        Trainer(
            make_config(**{"data.sampler": "pk", "data.pk_key": "track", "data.pk_per_class": 2}),
            tmp_path,
        )
    with pytest.raises(CrossmodalError, match="not a multiple"):
        Trainer(make_config(**{"data.sampler": "pk", "data.pk_per_class": 3}), tmp_path)


def test_resume_refuses_a_changed_config_and_a_missing_checkpoint(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    with pytest.raises(CrossmodalError, match=r"holds no last\.pt"):
        Trainer(make_config(), tmp_path, resume=True)
    Trainer(make_config(epochs=2), tmp_path).fit(stop_after_epoch=1)
    with pytest.raises(CrossmodalError, match=r"cannot change optim\.lr"):
        Trainer(make_config(epochs=2, **{"optim.lr": 1e-4}), tmp_path, resume=True)
    with pytest.raises(CrossmodalError, match="already holds a run"):
        Trainer(make_config(), tmp_path)


def test_data_loader_workers_do_not_change_the_run(make_config: MakeConfig, tmp_path: Path) -> None:
    """Windows are seeded per item, not per worker: 0 or 2 workers train alike."""
    runs = {}
    for workers in (0, 2):
        run_dir = tmp_path / f"w{workers}"
        Trainer(make_config(epochs=2, **{"data.num_workers": workers}), run_dir).fit(
            stop_after_epoch=1
        )
        runs[workers] = run_state(run_dir)
    assert runs[0] == runs[2]


def test_manifest_without_splits_and_too_few_tracks_trains_without_validation(
    make_config: MakeConfig, corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    from crossmodal.data import read_manifest, write_manifest

    # four tracks: too few to carve a validation split from
    records = [
        replace(r, split=None, track_id=f"t{i % 4}") for i, r in enumerate(read_manifest(corpus))
    ]
    manifest = write_manifest(records, corpus.parent / "unsplit_4_tracks.jsonl")
    with caplog.at_level(logging.WARNING, logger="crossmodal"):
        trainer = Trainer(make_config(epochs=1, **{"data.manifest": str(manifest)}), tmp_path)
    assert "only 4 track(s) to carve one from" in caplog.text
    assert "have no split: training on all 32 of them without validation" in caplog.text
    result = trainer.fit()
    assert (result.steps, result.val, result.best_score) == (4, None, None)
    assert not (tmp_path / "best.pt").exists()
    assert not (tmp_path / "carve.json").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model_from"] == "last.pt"
    model = CrossModalModel.load(tmp_path / "model.pt")
    assert state_digest(model.state_dict()) == state_digest(
        load_checkpoint(tmp_path / "last.pt")["state_dict"]
    )
