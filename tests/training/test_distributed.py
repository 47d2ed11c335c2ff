"""2-process gloo test: gathered losses and gradients equal the single-process ones.

The workers (tests/training/ddp_worker.py) run as separate processes on CPU. With the all-gather's
backward summing over ranks, each rank's local embeddings get ``world · ∂L/∂x`` of the
single-process loss ``L`` on the concatenated batch, and DDP's averaging of parameter
gradients gives exactly ``∂L/∂θ``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crossmodal.losses import InfoNCELoss, create_loss, default_objective
from crossmodal.training.distributed import all_gather_no_grad, all_gather_with_grad, is_distributed

WORKER = Path(__file__).with_name("ddp_worker.py")
WORLD = 2


def load_worker():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    port = free_port()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(r), str(WORLD), str(port), str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(WORLD)
    ]
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=180)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("DDP workers timed out")
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def slices(worker):
    starts = [sum(worker.SIZES[:r]) for r in range(WORLD)]
    return [slice(s, s + n) for s, n in zip(starts, worker.SIZES, strict=True)]


@pytest.mark.slow
def test_gather_concatenates_unequal_batches_in_rank_order(ranks) -> None:
    worker = load_worker()
    expected = worker.full_data()["video"]
    for result in ranks:
        torch.testing.assert_close(result["gathered"], expected)


@pytest.mark.slow
@pytest.mark.parametrize("name", load_worker().LOSS_NAMES)
def test_gathered_loss_and_gradients_equal_single_process(ranks, name) -> None:
    worker = load_worker()
    data = worker.full_data()
    video = data["video"].clone().requires_grad_(True)
    music = data["music"].clone().requires_grad_(True)
    expected = create_loss(name).double()(video, data["labels"], music, data["labels"])
    expected.backward()
    for r, part in enumerate(slices(worker)):
        value, video_grad, music_grad = ranks[r][name]
        torch.testing.assert_close(value, expected.detach())
        # The local gradient is world × the single-process one; DDP divides by world.
        torch.testing.assert_close(video_grad / WORLD, video.grad[part])
        torch.testing.assert_close(music_grad / WORLD, music.grad[part])


@pytest.mark.slow
def test_local_queries_against_gathered_references(ranks) -> None:
    worker = load_worker()
    data = worker.full_data()
    rows = torch.cat([torch.arange(s.start, s.start + 5) for s in slices(worker)])
    video = data["video"][rows].clone().requires_grad_(True)
    music = data["music"][rows].clone().requires_grad_(True)
    labels = data["unique"][rows]
    expected = InfoNCELoss(temperature=0.1, learnable=False)(video, labels, music, labels)
    expected.backward()
    values = [ranks[r]["local"][0] for r in range(WORLD)]
    torch.testing.assert_close(sum(values) / WORLD, expected.detach())
    for r in range(WORLD):
        _, video_grad, music_grad = ranks[r]["local"]
        torch.testing.assert_close(video_grad / WORLD, video.grad[5 * r : 5 * r + 5])
        torch.testing.assert_close(music_grad / WORLD, music.grad[5 * r : 5 * r + 5])


@pytest.mark.slow
def test_ddp_parameter_gradients_equal_single_process(ranks) -> None:
    worker = load_worker()
    data = worker.full_data()
    model = worker.Towers()
    objective = default_objective().double()
    video_emb, music_emb = model(data["video_in"], data["music_in"])
    expected = objective(video_emb, data["labels"], music_emb, data["labels"])
    expected.backward()
    for r in range(WORLD):
        value, grads, log_scale_grad = ranks[r]["ddp"]
        torch.testing.assert_close(value, expected.detach())
        for name, param in model.named_parameters():
            torch.testing.assert_close(grads[name], param.grad)
        # The temperature lives outside DDP; every rank computed the same full loss.
        torch.testing.assert_close(log_scale_grad, objective.terms["info_nce"].loss.log_scale.grad)


def test_single_process_functions_are_identity() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    labels = torch.arange(3)
    assert all_gather_with_grad(x) is x
    assert all_gather_no_grad(labels) is labels
    assert not is_distributed()
