"""The trainer's parts on their own: config checks and resume rules, the keyed objective,
epoch batches, position seeding, progress output, the metrics log, model loading."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crossmodal.config import ConfigError, from_dict, load_config, to_dict
from crossmodal.errors import CrossmodalError
from crossmodal.losses import InfoNCELoss, NPairLoss, SymmetricLoss, WeightedSum
from crossmodal.training.builders import epoch_batches
from crossmodal.training.config import LossTerm, TrainConfig, config_for_resume
from crossmodal.training.metrics_log import MetricsLog, plot_curves, read_metrics
from crossmodal.training.objective import build_objective, keys_of
from crossmodal.training.progress import EpochProgress
from crossmodal.training.seeding import SeededItems, derive_seed

# -- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--optim.accum_steps", "0"], "optim.accum_steps must be >= 1"),
        (["--optim.warmup_fraction", "1.5"], "optim.warmup_fraction must be in [0, 1]"),
        (["--max_minutes", "0"], "max_minutes must be > 0"),
        (["--losses", "[]"], "needs at least one loss term"),
        (["--losses", "[{name: info_nce, weight: -1}]"], "weight must be >= 0"),
        (["--data.pk_per_class", "0"], "data.pk_per_class must be >= 1"),
    ],
)
def test_bad_values_fail_when_the_config_is_built(override: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(TrainConfig, None, override)


def test_default_objective_and_yaml_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig()
    assert [(t.name, t.weight, t.key, t.symmetric) for t in cfg.losses] == [
        ("info_nce", 1.0, "track", True),
        ("npair", 1.0, "track", True),
        ("normface", 1.0, "label", True),
    ]
    assert from_dict(TrainConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_config_for_resume_keeps_the_run_and_takes_runtime_fields() -> None:
    stored = load_config(TrainConfig, None, ["--epochs", "10", "--model.embed_dim", "64"])
    asked = load_config(TrainConfig, None, ["--epochs", "20", "--data.manifest", "/new/place"])
    # only what the user set counts; the default embed_dim of `asked` is not a change
    merged = config_for_resume(stored, asked, {("epochs",), ("data", "manifest")})
    assert (merged.epochs, merged.data.manifest, merged.model.embed_dim) == (20, "/new/place", 64)
    with pytest.raises(ConfigError, match=r"cannot change model\.embed_dim \(64 → 128\)"):
        config_for_resume(stored, asked)  # all fields count as set
    same = config_for_resume(stored, stored)
    assert same == stored


# -- objective -------------------------------------------------------------------------------


def test_objective_matches_each_term_on_its_own_key() -> None:
    gen = torch.Generator().manual_seed(0)
    video, music = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    tracks = torch.arange(8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    track_loss = SymmetricLoss(InfoNCELoss(learnable=False))
    label_loss = SymmetricLoss(NPairLoss())
    objective = WeightedSum(
        {"a": track_loss, "b": label_loss}, {"a": 1.0, "b": 0.25}, {"a": "track", "b": "label"}
    )
    keys = keys_of(tracks, labels)
    value = objective(video, keys, music, keys)
    expected_a = track_loss(video, tracks, music, tracks)
    expected_b = label_loss(video, labels, music, labels)
    torch.testing.assert_close(value, expected_a + 0.25 * expected_b)
    torch.testing.assert_close(objective.last_terms["b"], expected_b)
    # with label keys the value differs from track keys: the key really routes
    assert not torch.allclose(expected_b, label_loss(video, tracks, music, tracks))


def test_build_objective_errors() -> None:
    cfg = TrainConfig(losses=[LossTerm("arcface", key="label")])
    with pytest.raises(Exception, match="some training clips have no label"):
        build_objective(cfg, {"track": 10, "label": 3}, 16, labelled=False)
    cfg = TrainConfig(losses=[LossTerm("info_nce", params={"temprature": 0.1})])
    with pytest.raises(Exception, match="loss 'info_nce': bad arguments"):
        build_objective(cfg, {"track": 10, "label": 3}, 16, labelled=True)
    cfg = TrainConfig(losses=[LossTerm("info_nce"), LossTerm("info_nce", key="label")])
    names = list(build_objective(cfg, {"track": 10, "label": 3}, 16, labelled=True).terms)
    assert names == ["info_nce", "info_nce_label"]
    cfg = TrainConfig(losses=[LossTerm("info_nse")])
    with pytest.raises(CrossmodalError, match="unknown loss 'info_nse'; choose from"):
        build_objective(cfg, {"track": 10, "label": 3}, 16, labelled=True)
    cfg = TrainConfig(losses=[LossTerm("triplet_margin", miner="hardest")])
    with pytest.raises(CrossmodalError, match="loss 'triplet_margin': unknown miner 'hardest'"):
        build_objective(cfg, {"track": 10, "label": 3}, 16, labelled=True)
    cfg = TrainConfig(losses=[LossTerm("default", params={"temperature": 0.1})])
    with pytest.raises(CrossmodalError, match=r"list the terms: --losses '\[\{name: info_nce"):
        build_objective(cfg, {"track": 10, "label": 3}, 16, labelled=True)


def _old_default_objective(video, music, tracks):
    """The default objective as it was computed before the losses moved to one contract:
    symmetric InfoNCE (τ = 0.07, a logit scale of 1/0.07) + symmetric N-pair (scale 1,
    norm regulariser 0.002), written out from the formulas (float64)."""
    # The learnable log-scale parameter starts as float32 log(1/0.07).
    scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float32).double().exp()

    def info_nce(q, r):
        logits = F.normalize(q, dim=1) @ F.normalize(r, dim=1).T * scale
        same = (tracks[:, None] == tracks[None, :]).double()
        log_softmax = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        return (-(log_softmax * same).sum(1) / same.sum(1)).mean()

    def npair(q, r):
        logits = q @ r.T
        same = tracks[:, None] == tracks[None, :]
        terms = []
        for i in range(len(q)):
            neg = logits[i][~same[i]]
            pos = logits[i][same[i]]
            terms.append(torch.stack([torch.log1p(torch.exp(neg - p).sum()) for p in pos]).mean())
        reg = 0.5 * (q.pow(2).sum(1).mean() + r.pow(2).sum(1).mean())
        return torch.stack(terms).mean() + 0.002 * reg

    nce = 0.5 * (info_nce(video, music) + info_nce(music, video))
    npr = 0.5 * (npair(video, music) + npair(music, video))
    return nce + npr, {"info_nce": nce, "npair": npr}


@pytest.mark.parametrize(
    "losses",
    [[LossTerm("default")], [LossTerm("info_nce"), LossTerm("npair")]],
    ids=["default preset", "listed"],
)
def test_default_objective_computes_what_it_did(losses) -> None:
    gen = torch.Generator().manual_seed(3)
    video = F.normalize(torch.randn(12, 8, generator=gen, dtype=torch.float64), dim=1)
    music = F.normalize(torch.randn(12, 8, generator=gen, dtype=torch.float64), dim=1)
    tracks = torch.arange(12) // 2
    cfg = TrainConfig(losses=losses)
    objective = build_objective(cfg, {"track": 6, "label": 3}, 8, labelled=True).double()
    # Each term once, never SymmetricLoss(WeightedSum(Symmetric, Symmetric)).
    assert list(objective.terms) == ["info_nce", "npair"]
    assert all(isinstance(t, SymmetricLoss) for t in objective.terms.values())
    keys = keys_of(tracks, tracks % 3)
    value = objective(video, keys, music, keys)
    expected, terms = _old_default_objective(video, music, tracks)
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    for name, term in terms.items():
        torch.testing.assert_close(objective.last_terms[name], term, rtol=1e-10, atol=1e-12)


def test_default_preset_with_memory_builds_each_term_once() -> None:
    cfg = TrainConfig(losses=[LossTerm("default", weight=0.5)], memory_size=16)
    objective = build_objective(cfg, {"track": 6, "label": 3}, 8, labelled=True)
    assert list(objective.terms) == ["info_nce", "npair"]
    assert objective.weights == {"info_nce": 0.5, "npair": 0.5}
    memories = [m for m in objective.modules() if type(m).__name__ == "CrossBatchMemory"]
    assert len(memories) == 4  # two terms × two directions


# -- batches and seeding -----------------------------------------------------------------------


def test_ranks_split_the_single_process_batches() -> None:
    keys = np.arange(50)
    one = epoch_batches(TrainConfig(batch_size=8, seed=3), keys, epoch=2, rank=0, world=1)
    two = [epoch_batches(TrainConfig(batch_size=4, seed=3), keys, 2, rank, 2) for rank in (0, 1)]
    assert len(one) == len(two[0]) == len(two[1]) == 6
    for i, batch in enumerate(one):
        assert batch == two[0][i] + two[1][i]  # the gather order: rank 0 first
    flat = [i for b in one for i in b]
    assert len(set(flat)) == len(flat) == 48
    assert one == epoch_batches(TrainConfig(batch_size=8, seed=3), keys, 2, 0, 1)
    assert one != epoch_batches(TrainConfig(batch_size=8, seed=3), keys, 3, 0, 1)


def test_batches_are_cut_to_whole_accumulation_groups() -> None:
    cfg = load_config(TrainConfig, None, ["--batch_size", "4", "--optim.accum_steps", "3"])
    assert len(epoch_batches(cfg, np.arange(30), 0, 0, 1)) == 6  # 7 batches → 2 groups of 3


class RandomItems(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> float:
        return float(torch.rand(()))


def test_seeded_items_depend_on_the_seed_only_and_leave_the_caller_rng_alone() -> None:
    items = SeededItems(RandomItems())
    torch.manual_seed(1)
    before = torch.get_rng_state()
    first = items[(2, derive_seed(0, 1, 2))]
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)
    assert items[(2, derive_seed(0, 1, 2))] == first
    assert items[(2, derive_seed(0, 2, 2))] != first
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1)


# -- progress and metrics -----------------------------------------------------------------------


def test_progress_without_a_terminal_logs_sparse_lines_and_no_bar(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    assert not sys.stderr.isatty()
    with caplog.at_level(logging.INFO, logger="crossmodal"):
        progress = EpochProgress(total=50, initial=10, desc="epoch 2/3", interval=3600)
        for _ in range(40):
            progress.update()
        progress.set_postfix(loss="0.5000", clips_s="12.0")
        progress.close()
    assert "\r" not in capsys.readouterr().err
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["epoch 2/3: 50/50 batches, loss 0.5000, clips_s 12.0"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="crossmodal"):
        progress = EpochProgress(total=3, initial=0, desc="e", interval=0.0)
        for _ in range(3):
            progress.update()
    assert [r.getMessage() for r in caplog.records] == [f"e: {i}/3 batches" for i in (1, 2, 3)]


def test_metrics_log_resume_drops_records_past_the_checkpoint(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path)
    for step in range(1, 6):
        log.write("train", step, step / 5, loss=1.0 / step)
    log.write("val", 5, 1.0, score=0.5)
    log.close()
    with (tmp_path / "metrics.jsonl").open("a") as fh:
        fh.write('{"kind": "train", "st')  # torn line of a killed process
    MetricsLog(tmp_path, resume_step=3).close()
    assert [(r["kind"], r["step"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == [
        ("train", 1),
        ("train", 2),
        ("train", 3),
    ]
    MetricsLog(tmp_path).close()  # a fresh run starts an empty log
    assert not (tmp_path / "metrics.jsonl").exists()


def test_plot_curves_without_matplotlib_warns_and_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = MetricsLog(tmp_path)
    log.write("train", 1, 0.5, loss=1.0)
    log.close()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with caplog.at_level(logging.WARNING, logger="crossmodal"):
        assert plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png") is None
    assert "matplotlib is not installed" in caplog.text
    assert not (tmp_path / "curves.png").exists()


def test_plot_curves_writes_a_png_and_leaves_the_matplotlib_backend_alone(tmp_path: Path) -> None:
    # Training inside a notebook must not switch the kernel's (inline) backend.
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    log = MetricsLog(tmp_path)
    log.write("train", 1, 0.5, loss=1.0)
    log.write("train", 2, 1.0, loss=0.5)
    log.write("val", 2, 1.0, **{"v2m_R@1": 0.5, "v2m_R@10": 1.0})
    log.close()
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        figures = plt.get_fignums()
        out = plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == figures
    finally:
        matplotlib.use(before)
    assert out == tmp_path / "curves.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
