"""Where pretrained weights come from: a local file or folder, or a hub name.

``pretrained=`` of :func:`crossmodal.encoders.create_encoder` is one of

- ``None``: random initialisation (the default everywhere);
- a local **file** (``.pt``/``.pth``/``.bin``): a state dict, read with
  ``torch.load(..., weights_only=True)`` (torchvision's format for torchvision backbones,
  the encoder's own ``state_dict()`` for the others);
- a local **folder** written by a transformers model's ``save_pretrained()``;
- a **hub name** (a transformers model id such as ``"MCG-NJU/videomae-base"``, or a
  torchvision weights name such as ``"DEFAULT"``/``"KINETICS400_V1"``). Hub names load
  from the local cache, else download where the machine has network; offline they fail
  at once with :class:`PretrainedUnavailableError`, whose message says how to pass a
  local path instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

import torch

from crossmodal.errors import CrossmodalError, torch_load_reason

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
# Environment variables that mean "never touch the network" (the first two are
# huggingface_hub's and transformers' own switches).
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "CROSSMODAL_OFFLINE")
LOCAL_PATH_HELP = (
    "pass a local path instead: pretrained='/path/to/folder' holding a transformers "
    "save_pretrained() folder (config.json + weights), or pretrained='/path/to/weights.pth' "
    "holding a state dict (torchvision's format for torchvision backbones)"
)


class PretrainedError(CrossmodalError):
    """Pretrained weights that cannot be found, read or matched to the architecture."""


class PretrainedUnavailableError(PretrainedError):
    """A hub name on a machine without network access and without a cached copy."""


PretrainedKind = Literal["file", "dir", "name"]


def classify(pretrained: str | os.PathLike[str]) -> tuple[PretrainedKind, str]:
    """``("file"|"dir", path)`` for an existing path, ``("name", name)`` for a hub name.

    A string that looks like a path (absolute, ``./``, ``~``, or with a weights suffix)
    but does not exist is an error rather than a hub lookup.
    """
    text = os.fspath(pretrained)
    path = Path(text).expanduser()
    if path.is_file():
        return "file", str(path)
    if path.is_dir():
        return "dir", str(path)
    looks_like_path = (
        text.startswith(("/", "./", "../", "~", "\\"))
        or text.lower().endswith(WEIGHT_SUFFIXES)
        or os.sep + os.sep in text
    )
    if looks_like_path or not text:
        raise PretrainedError(f"pretrained weights not found: {text!r} is not a file or folder")
    return "name", text


def offline_by_env() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"} for var in OFFLINE_ENV
    )


def network_available(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` can be opened (False at once when an offline
    variable is set). Checked before a hub download so that an offline machine fails in
    seconds instead of retrying for half a minute."""
    if offline_by_env():
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unavailable(name: str, source: str) -> PretrainedUnavailableError:
    """The error for a hub name that cannot be fetched here."""
    return PretrainedUnavailableError(
        f"pretrained={name!r} names weights on {source}, but this machine has no network "
        f"access and no cached copy; {LOCAL_PATH_HELP}"
    )


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file, read with ``weights_only=True``.

    Checkpoints that wrap the weights under ``"state_dict"`` or ``"model"`` are unwrapped.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # safetensors raises its own error types
            raise PretrainedError(f"cannot read {path}: {err}") from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise PretrainedError(
            f"cannot read {path} as a state dict with torch.load(weights_only=True): "
            f"{torch_load_reason(err)}"
        ) from err
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedError(f"{path} does not hold a state dict (a mapping of name → tensor)")
    return obj


def load_into(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """``module.load_state_dict(strict=True)`` with an error that names the mismatch."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong_shape = sorted(
        k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape
    )
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong_shape),
        ):
            if keys:
                shown = ", ".join(keys[:5]) + (f", … ({len(keys)} in all)" if len(keys) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise PretrainedError(
            f"weights in {source} do not fit {type(module).__name__} ({'; '.join(parts)})"
        )
    module.load_state_dict(state_dict, strict=True)


def torchvision_state_dict(model_name: str, pretrained: str) -> dict[str, torch.Tensor]:
    """Weights for torchvision model ``model_name`` from a file or a weights name.

    A weights name is a member of the model's torchvision weights enum (``"DEFAULT"``,
    ``"IMAGENET1K_V1"``, ``"KINETICS400_V1"``, ...); it loads from torch hub's cache, or
    is downloaded where the machine has network.
    """
    kind, where = classify(pretrained)
    if kind == "file":
        return load_state_dict_file(where)
    if kind == "dir":
        raise PretrainedError(
            f"{model_name} takes a torchvision state dict file (.pth), not a folder: {where}"
        )
    from urllib.parse import urlparse

    from torchvision.models import get_model_weights

    enum = get_model_weights(model_name)
    names = [w.name for w in enum]
    if where == "DEFAULT":
        weights = enum.DEFAULT  # type: ignore[attr-defined]
    elif where in names:
        weights = enum[where]
    else:
        raise PretrainedError(
            f"{model_name} has no torchvision weights named {where!r} "
            f"(known: DEFAULT, {', '.join(names)}); or pass a local .pth file"
        )
    cached = (
        Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    )
    if not cached.is_file() and not network_available(urlparse(weights.url).hostname or ""):
        raise unavailable(where, f"download.pytorch.org ({weights.url})")
    return weights.get_state_dict(progress=False)


def load_torchvision_weights(
    module: torch.nn.Module, arch: str, head_attr: str, pretrained: str | os.PathLike[str]
) -> None:
    """Load torchvision ``arch`` weights (a file or a weights name) into ``module``, the
    torchvision network whose classifier ``head_attr`` was replaced by ``Identity``
    (the classifier's weights are left out)."""
    state = torchvision_state_dict(arch, os.fspath(pretrained))
    head = f"{head_attr}."
    kept = {k: v for k, v in state.items() if not k.startswith(head)}
    load_into(module, kept, str(pretrained))


def load_encoder_state(
    module: torch.nn.Module, pretrained: str | os.PathLike[str], name: str
) -> None:
    """Load a file holding ``module.state_dict()`` (encoders that have no published
    weights accept only that)."""
    kind, where = classify(pretrained)
    if kind != "file":
        raise PretrainedError(
            f"encoder {name!r} has no published weights; pretrained= must be a file holding "
            f"its state_dict() (got {where!r})"
        )
    load_into(module, load_state_dict_file(where), where)
