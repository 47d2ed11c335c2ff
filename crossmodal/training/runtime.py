"""Where a run executes: the device, and the process group under ``torchrun``."""

from __future__ import annotations

import os

import torch

from crossmodal.errors import CrossmodalError


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; any other name as torch reads it,
    with an error when it names CUDA on a machine without."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise CrossmodalError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CrossmodalError(f"device {name!r} requested but CUDA is not available")
    return device


def setup_distributed(device_name: str) -> tuple[torch.device, int, int, bool]:
    """(device, rank, world size, whether this call created the process group).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group (NCCL on CUDA,
    gloo on CPU) and gives each rank its own GPU (``LOCAL_RANK``) unless the device
    names one. Otherwise a single process: rank 0 of 1.
    """
    device = resolve_device(device_name)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device, 0, 1, False
    import torch.distributed as dist

    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank(), dist.get_world_size(), created
