from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from crossmodal.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from crossmodal.training.schedule import warmup_cosine


def test_round_trip_with_optimizer_state(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.pt"
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": 3,
            "config": {"lr": 1e-2, "names": ["a", "b"]},
        },
    )
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3
    assert loaded["config"] == {"lr": 1e-2, "names": ["a", "b"]}
    other = torch.nn.Linear(3, 2)
    other.load_state_dict(loaded["model"])
    assert torch.equal(other.weight, model.weight)
    opt2 = torch.optim.AdamW(other.parameters(), lr=1e-2)
    opt2.load_state_dict(loaded["optimizer"])
    assert torch.equal(opt2.state[other.weight]["exp_avg"], opt.state[model.weight]["exp_avg"])


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"step": 1})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="not a crossmodal checkpoint"):
        load_checkpoint(foreign)


def test_refuses_pickled_objects(tmp_path: Path) -> None:
    # weights_only=True: arbitrary objects in a checkpoint are refused, not executed
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "obj": Path("/")}, evil)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(evil)


def test_warmup_cosine_shape() -> None:
    values = [warmup_cosine(s, total_steps=110, warmup_steps=10, min_ratio=0.1) for s in range(120)]
    assert values[0] == pytest.approx(0.1)
    assert values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert values[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert values[110] == pytest.approx(0.1)
    assert values[119] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(values[10:]))
