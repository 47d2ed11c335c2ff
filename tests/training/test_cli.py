"""`crossmodal train`, `evaluate` and `embed` through the command line: results, files and
clear errors (exit code 2, one message, no traceback)."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from crossmodal.apps.cli import main
from crossmodal.apps.cli.train import EPILOG
from crossmodal.checkpoint import load_checkpoint
from crossmodal.config import from_dict, load_config
from crossmodal.data import PairedClipDataset, read_manifest, write_manifest
from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings
from crossmodal.model import CrossModalModel
from crossmodal.training.config import LossTerm, TrainConfig
from tests.training.helpers import tiny_overrides


def fails_cleanly(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI, expect exit code 2 and a message without a traceback; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "ERROR" in err
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, corpus: Path, cache_dir: Path) -> Path:
    """A run trained through the CLI (2 epochs)."""
    out = tmp_path_factory.mktemp("run")
    argv = ["-q", "train", "--out", str(out), *tiny_overrides(corpus, cache_dir)]
    assert main(argv) == 0
    return out


def test_train_prints_a_summary_and_writes_the_run(
    run_dir: Path, corpus: Path, cache_dir: Path, tmp_path: Path, capsys
) -> None:
    assert (run_dir / "model.pt").is_file()
    assert load_checkpoint(run_dir / "last.pt")["step"] == 6
    out_dir = tmp_path / "again"
    argv = ["train", "--data", str(corpus), "--out", str(out_dir)]
    argv += tiny_overrides(corpus, cache_dir, epochs=1)[2:]  # --data replaces data.manifest
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"trained 1 epochs \(3 steps\) in [\d.]+ min \(all epochs done\); run folder: ", out
    )
    assert "video_to_music" in out
    assert "validation of the kept model (model.pt):" in out
    assert "  sync baseline" in out


def test_print_config_is_the_config_the_run_would_use(
    corpus: Path, cache_dir: Path, capsys
) -> None:
    overrides = tiny_overrides(corpus, cache_dir, **{"optim.lr": 3e-4, "data.sampler": "pk"})
    assert main(["train", "--print-config", *overrides]) == 0
    printed = from_dict(TrainConfig, yaml.safe_load(capsys.readouterr().out))
    assert printed == load_config(TrainConfig, None, overrides)
    assert printed.optim.lr == 3e-4
    assert printed.data.sampler == "pk"


def test_help_examples_are_valid(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for option in (
        "--data",
        "--out",
        "--config",
        "--resume",
        "--stop-after-epoch",
        "--print-config",
    ):
        assert option in help_text
    # Every override the epilog shows is accepted and does what it says.
    example = EPILOG.split("e.g.:\n", 1)[1].split("\n")[:2]
    args = shlex.split(" ".join(line.rstrip("\\") for line in example))
    overrides = args[args.index("--epochs") :]
    cfg = load_config(TrainConfig, None, overrides)
    assert (cfg.epochs, cfg.optim.lr, cfg.model.embed_dim, cfg.data.sampler) == (
        30,
        1e-3,
        256,
        "pk",
    )
    losses_line = next(line for line in EPILOG.splitlines() if line.strip().startswith("--losses"))
    cfg = load_config(TrainConfig, None, shlex.split(losses_line))
    assert cfg.losses == [
        LossTerm("info_nce"),
        LossTerm("npair"),
        LossTerm("arcface", weight=0.1, key="label"),
    ]


def test_empty_train_split_is_a_clear_error(
    corpus: Path, cache_dir: Path, tmp_path: Path, capsys
) -> None:
    records = [r for r in read_manifest(corpus) if r.split != "train"]
    manifest = write_manifest(records, tmp_path / "manifest.jsonl")
    argv = ["train", "--out", str(tmp_path / "run"), *tiny_overrides(manifest, cache_dir)]
    err = fails_cleanly(capsys, argv)
    assert "the 'train' split of" in err
    assert "is empty (splits present: test, val)" in err
    assert not (tmp_path / "run").exists()


def test_missing_media_are_listed_in_one_error(
    corpus: Path, cache_dir: Path, tmp_path: Path, capsys
) -> None:
    from dataclasses import replace

    records = read_manifest(corpus)
    records[0] = replace(records[0], video=tmp_path / "gone_a.mp4")
    records[5] = replace(records[5], video=tmp_path / "gone_b.mp4")
    manifest = write_manifest(records, tmp_path / "manifest.jsonl")
    argv = ["train", "--out", str(tmp_path / "run"), *tiny_overrides(manifest, cache_dir)]
    err = fails_cleanly(capsys, argv)
    assert "2 media file(s) of the manifest are missing" in err
    assert f"{records[0].id}: {tmp_path / 'gone_a.mp4'}" in err
    assert f"{records[5].id}: {tmp_path / 'gone_b.mp4'}" in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--losses", "[{name: no_such_loss}]"], "unknown loss 'no_such_loss'; choose from"),
        (["--losses", "[{name: info_nce, key: mood}]"], "losses[0].key must be one of"),
        (["--optim.lr", "fast"], "optim.lr must be a number"),
        (["--optim.lr", "-1"], "optim.lr must be > 0"),
        (["--no_such_field", "1"], "unknown option --no_such_field"),
        (["--batch_size", "1"], "batch_size must be >= 2"),
    ],
)
def test_bad_config_is_a_clear_error(
    corpus: Path, cache_dir: Path, tmp_path: Path, capsys, override: list[str], message: str
) -> None:
    argv = ["train", "--out", str(tmp_path / "run"), *tiny_overrides(corpus, cache_dir), *override]
    assert message in fails_cleanly(capsys, argv)


def test_corrupt_last_checkpoint_on_resume(run_dir: Path, tmp_path: Path, capsys) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    last = run / "last.pt"
    damaged = last.read_bytes()[: last.stat().st_size // 2]
    last.write_bytes(damaged)
    best = (run / "best.pt").read_bytes()
    err = fails_cleanly(capsys, ["train", "--out", str(run), "--resume", "--epochs", "3"])
    assert "cannot resume" in err
    assert "is unreadable" in err
    assert "The file is left as it is; best.pt is intact" in err
    assert last.read_bytes() == damaged
    assert (run / "best.pt").read_bytes() == best
    assert load_checkpoint(run / "best.pt")["step"] > 0


def test_resume_extends_a_run_and_refuses_other_changes(
    run_dir: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    err = fails_cleanly(capsys, ["train", "--out", str(run), "--resume", "--lr", "0.1"])
    assert "cannot change optim.lr (0.002 → 0.1)" in err
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", "--print-config"]) == 0
    printed = from_dict(TrainConfig, yaml.safe_load(capsys.readouterr().out))
    assert printed.epochs == 3
    assert printed.model.embed_dim == 16  # the run's, not the default
    assert main(["-q", "train", "--out", str(run), "--resume", "--epochs", "3"]) == 0
    assert load_checkpoint(run / "last.pt")["step"] == 9


def embed_one_by_one(model: CrossModalModel, dataset: PairedClipDataset) -> tuple:
    """Reference embeddings: each item through the towers alone, windows of a clip
    averaged and re-normalised by hand."""
    model.eval()
    with torch.no_grad():
        items = [dataset[i] for i in range(len(dataset))]
        video = torch.cat([model.encode("video", it["video"][None]) for it in items])
        music = torch.cat([model.encode("music", it["audio"][None]) for it in items])
    n = dataset.segments
    video = F.normalize(video.view(-1, n, video.shape[1]).mean(1), dim=-1)
    music = F.normalize(music.view(-1, n, music.shape[1]).mean(1), dim=-1)
    tracks = torch.tensor([it["track"] for it in items[::n]])
    labels = torch.tensor([it["label"] for it in items[::n]])
    return video, music, tracks, labels, [it["id"] for it in items[::n]]


@pytest.mark.parametrize("segments", [1, 3])
def test_evaluate_json_equals_the_metrics_of_the_model_embeddings(
    run_dir: Path, corpus: Path, cache_dir: Path, capsys, segments: int
) -> None:
    argv = ["-q", "evaluate", "--checkpoint", str(run_dir), "--data", str(corpus), "--json"]
    argv += ["--segments", str(segments), "--cache-dir", str(cache_dir)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    keys = {"R@1", "R@5", "R@10", "MedR", "MeanR", "mAP"}
    assert set(report["video_to_music"]) == keys
    assert set(report["music_to_video"]) == keys
    assert report["gallery_size"] == 4
    assert set(report["chance"]) == {"R@1", "R@10"}
    assert (report["split"], report["segments"]) == ("test", segments)

    model = CrossModalModel.load(run_dir / "model.pt")
    records = read_manifest(corpus)
    dataset = PairedClipDataset(
        [r for r in records if r.split == "test"],
        model.video_spec,
        model.audio_spec,
        labels=sorted({r.label for r in records}),
        eval_windows=segments if segments > 1 else "centre",
    )
    video, music, tracks, labels, _ = embed_one_by_one(model, dataset)
    # The model's own score: gated by the sync gate it was calibrated with in training.
    assert model.layout.gated
    assert (report["blend"], report["sync_gate"]) == (model.layout.blend, model.layout.gate)
    expected = evaluate_embeddings(video, music, tracks, labels, scorer=model.layout.scores)
    for direction in ("video_to_music", "music_to_video"):
        for key in keys:
            assert report[direction][key] == pytest.approx(expected[direction][key], abs=1e-9)
    assert report["chance"] == expected["chance"]
    category = report["category"]
    for direction in ("video_to_music", "music_to_video"):
        assert category[direction] == pytest.approx(expected["category"][direction])
    assert category["NMI"] == pytest.approx(expected["category"]["NMI"])


def test_embed_npz_round_trip(
    run_dir: Path, corpus: Path, cache_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "emb.npz"
    argv = ["-q", "embed", "--checkpoint", str(run_dir), "--data", str(corpus), "--out", str(out)]
    assert main([*argv, "--cache-dir", str(cache_dir)]) == 0
    # 16 sync + 32 vibe dims: the default model's two parts, stored side by side
    assert "wrote 32 clips × 2 modalities × 48 dims" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as npz:
        data = {name: npz[name] for name in npz.files}
    assert set(data) == {"id", "track_id", "label", "video", "music"}
    records = read_manifest(corpus)
    assert data["id"].tolist() == [r.id for r in records]
    assert data["track_id"].tolist() == [r.track_id for r in records]
    assert data["label"].tolist() == [r.label for r in records]
    for name in ("video", "music"):
        assert data[name].dtype == np.float32
        assert data[name].shape == (32, 48)
        np.testing.assert_allclose(np.linalg.norm(data[name], axis=1), 1.0, atol=1e-6)
    model = CrossModalModel.load(run_dir / "model.pt")
    dataset = PairedClipDataset(records, model.video_spec, model.audio_spec)
    video, music, *_ = embed_one_by_one(model, dataset)
    np.testing.assert_allclose(data["video"], video.numpy(), atol=1e-5)
    np.testing.assert_allclose(data["music"], music.numpy(), atol=1e-5)


def test_embed_parquet_without_pyarrow_says_what_to_install(
    run_dir: Path, corpus: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow → ImportError
    out = tmp_path / "emb.parquet"
    argv = ["embed", "--checkpoint", str(run_dir), "--data", str(corpus), "--out", str(out)]
    err = fails_cleanly(capsys, argv)
    assert (
        "pyarrow is needed for parquet export (or use .npz); install it with: pip install pyarrow"
        in err
    )
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_evaluate_and_embed_input_errors(
    run_dir: Path, corpus: Path, tmp_path: Path, capsys
) -> None:
    base = ["--checkpoint", str(run_dir), "--data", str(corpus)]
    err = fails_cleanly(capsys, ["evaluate", *base, "--split", "nope"])
    assert "split 'nope' of" in err
    assert "has no clips (splits present: test, train, val)" in err
    err = fails_cleanly(capsys, ["evaluate", "--checkpoint", str(tmp_path), "--data", str(corpus)])
    assert "holds no model.pt, best.pt or last.pt" in err
    err = fails_cleanly(capsys, ["embed", *base, "--out", str(tmp_path / "x.csv")])
    assert "use .npz or .parquet" in err
    err = fails_cleanly(capsys, ["evaluate", *base, "--segments", "0"])
    assert "--segments must be >= 1" in err


def test_a_run_on_an_unsplit_manifest_carves_val_and_evaluate_uses_it(
    corpus: Path, cache_dir: Path, tmp_path: Path, capsys
) -> None:
    from dataclasses import replace

    records = [replace(r, split=None) for r in read_manifest(corpus)]
    manifest = write_manifest(records, tmp_path / "unsplit.jsonl")
    run = tmp_path / "run"
    argv = ["-q", "train", "--out", str(run), "--baseline", "none"]
    argv += tiny_overrides(manifest, cache_dir, epochs=1, **{"data.val_fraction": 0.25})
    assert main(argv) == 0
    carved = json.loads((run / "carve.json").read_text())["val"]
    assert len(carved) == 8
    capsys.readouterr()
    argv = ["-q", "evaluate", "--checkpoint", str(run), "--data", str(manifest)]
    argv += ["--split", "val", "--cache-dir", str(cache_dir), "--baseline", "sync"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gallery_size"] == 8
    assert report["baselines"]["sync"]["gallery_size"] == 8
    assert main(argv) == 0
    table = capsys.readouterr().out.splitlines()
    rows = [line.split()[0] if not line.startswith("  ") else "baseline" for line in table[2:6]]
    assert rows == ["video_to_music", "baseline", "music_to_video", "baseline"]
