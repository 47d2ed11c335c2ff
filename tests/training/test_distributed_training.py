"""Training under torchrun with 2 CPU processes (gloo).

Two ranks with ``batch_size`` B each, embeddings all-gathered, must train as one process
with batch 2·B: the global batch i of the single process is split over the ranks (rank 0
its first half), the loss is computed on the gathered batch, and DDP's gradient average
undoes the all-gather's sum (see :mod:`crossmodal.training.distributed`). In the frozen-backbone
regime this holds up to float summation order. End to end, the towers' BatchNorm
normalises each rank's half batch on its own (as in any DDP run without SyncBatchNorm,
which has no CPU kernel), so there the run itself is checked: both ranks step together,
rank 0 validates and writes.

One torchrun launch runs both trainings (ddp_train_worker.py): starting two Python
processes that import torch is most of the cost on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crossmodal.apps.cli import main
from crossmodal.checkpoint import load_checkpoint
from crossmodal.training.metrics_log import read_metrics
from tests.training.helpers import tiny_overrides

WORKER = Path(__file__).with_name("ddp_train_worker.py")
# No vibe dropout: its draws differ between one process and two ranks, and the runs are
# compared loss for loss.
FROZEN = {
    "frozen_backbones": True,
    "frozen_windows": 2,
    "epochs": 2,
    "model.vibe_dropout": 0.0,
}


@pytest.fixture(scope="module")
def ddp_runs(
    tmp_path_factory: pytest.TempPathFactory, corpus: Path, cache_dir: Path
) -> tuple[Path, Path, str]:
    """(frozen run, end-to-end run, combined output) of one 2-rank torchrun launch."""
    out = tmp_path_factory.mktemp("ddp")
    frozen, e2e = out / "frozen", out / "e2e"
    runs = [
        ["train", "--out", str(frozen), *tiny_overrides(corpus, cache_dir, batch_size=4, **FROZEN)],
        ["train", "--out", str(e2e), *tiny_overrides(corpus, cache_dir, batch_size=4)],
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*command, str(WORKER), json.dumps(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return frozen, e2e, proc.stdout + proc.stderr


def train_records(run_dir: Path) -> list[dict]:
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"]


@pytest.mark.slow
def test_two_ranks_train_like_one_process_on_the_concatenated_batch(
    ddp_runs: tuple[Path, Path, str], corpus: Path, cache_dir: Path, tmp_path: Path, real_curves
) -> None:
    ddp, _, output = ddp_runs
    assert "batch 4 × 2 ranks, frozen backbones" in output
    single = tmp_path / "single"
    overrides = tiny_overrides(corpus, cache_dir, batch_size=8, **FROZEN)
    assert main(["-q", "train", "--out", str(single), *overrides]) == 0

    ddp_records, single_records = train_records(ddp), train_records(single)
    assert [r["step"] for r in ddp_records] == [r["step"] for r in single_records]
    assert [r["step"] for r in ddp_records] == [1, 2, 3, 4, 5, 6]
    # step 1: the loss on the gathered batch is the single-process loss, and so on
    for a, b in zip(ddp_records, single_records, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    ddp_state = load_checkpoint(ddp / "last.pt")
    single_state = load_checkpoint(single / "last.pt")
    assert ddp_state["step"] == single_state["step"] == 6
    for part in ("state_dict", "objective"):
        for name, value in single_state[part].items():
            torch.testing.assert_close(ddp_state[part][name], value, atol=1e-6, rtol=1e-5)
    # rank 0 alone wrote the run folder: the same files as one process, nothing else
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())


@pytest.mark.slow
def test_end_to_end_training_under_torchrun(ddp_runs: tuple[Path, Path, str]) -> None:
    _, run, output = ddp_runs
    assert re.search(
        r"training on cpu: 24 clips, 3 steps/epoch, 6 steps \(fixed by epochs\), batch 4 × 2 ranks$",
        output,
        re.M,
    )
    # rank 0 alone speaks for the run
    assert (
        len(
            re.findall(
                rf"trained 2 epochs \(6 steps\) in [\d.]+ min \(all epochs done\); run folder: {run}$",
                output,
                re.M,
            )
        )
        == 1
    )
    payload = load_checkpoint(run / "last.pt")
    assert (payload["epoch"], payload["step"]) == (2, 6)
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "val"] == [3, 6]
    for name in ("best.pt", "model.pt", "summary.json", "curves.png", "config.yaml"):
        assert (run / name).is_file()
