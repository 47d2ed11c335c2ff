"""Building transformers backbones from configs, local folders or hub names."""

from __future__ import annotations

import os
from typing import Any

import torch

from crossmodal.encoders.pretrained import (
    PretrainedError,
    classify,
    network_available,
    unavailable,
)
from crossmodal.errors import MissingDependencyError

# Config entries that describe where/how a config was saved, not the architecture.
_BOOKKEEPING = {
    "transformers_version",
    "architectures",
    "_name_or_path",
    "torch_dtype",
    "dtype",
    "id2label",
    "label2id",
    "_attn_implementation_autoset",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "use_cache",
}


class TransformersBackbone:
    """Mixin for encoders around a transformers model held in ``hf_model``."""

    hf_model: torch.nn.Module

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write the transformers model with ``save_pretrained`` (config + safetensors),
        so that ``create_encoder(name, pretrained=folder)`` loads it back."""
        self.hf_model.save_pretrained(os.fspath(folder))


def import_transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise MissingDependencyError("transformers", purpose="transformers encoders") from err
    return transformers


def build_hf_backbone(
    model_class: str,
    config_class: str,
    defaults: dict[str, Any],
    pretrained: str | os.PathLike[str] | None,
    overrides: dict[str, Any],
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A transformers model and the config entries that rebuild it.

    Random init: ``config_class(**defaults, **overrides)``; every override must be an
    attribute of that config (a typo would otherwise be silently kept by transformers).
    ``pretrained``: a ``save_pretrained`` folder or a hub name; its config wins, and an
    override that contradicts it is an error. Returns the model and ``arch``: the config
    entries that differ from ``defaults``' config, so that ``config_class(**defaults,
    **arch)`` builds the same architecture again.
    """
    transformers = import_transformers()
    config_cls = getattr(transformers, config_class)
    model_cls = getattr(transformers, model_class)
    reference = config_cls(**defaults).to_dict()
    unknown = sorted(k for k in overrides if k not in reference)
    if unknown:
        raise PretrainedError(
            f"{config_class} has no field {', '.join(map(repr, unknown))}; "
            f"fields: {', '.join(sorted(k for k in reference if k not in _BOOKKEEPING))}"
        )
    if pretrained is None:
        config = config_cls(**{**defaults, **overrides})
        model = model_cls(config)
    else:
        model = _from_pretrained(model_cls, os.fspath(pretrained))
        config = model.config
        loaded = config.to_dict()
        clashes = {
            k: (v, loaded.get(k)) for k, v in overrides.items() if _norm(loaded.get(k)) != _norm(v)
        }
        if clashes:
            detail = ", ".join(f"{k}={v!r} (weights have {w!r})" for k, (v, w) in clashes.items())
            raise PretrainedError(f"overrides contradict the pretrained config: {detail}")
    arch = {
        k: v
        for k, v in config.to_dict().items()
        if k not in _BOOKKEEPING and k in reference and _norm(reference[k]) != _norm(v)
    }
    return model, arch


def _norm(value: Any) -> Any:
    # Configs read from JSON hold lists where the defaults hold tuples.
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _from_pretrained(model_cls: Any, pretrained: str) -> torch.nn.Module:
    kind, where = classify(pretrained)
    if kind == "file":
        raise PretrainedError(
            f"{model_cls.__name__} takes a save_pretrained() folder or a hub name, not a "
            f"file: {where}"
        )
    try:
        return model_cls.from_pretrained(where, local_files_only=True)
    except OSError as err:
        if kind == "dir":
            raise PretrainedError(f"cannot load {model_cls.__name__} from {where}: {err}") from err
    # A hub name that is not cached: download where there is network, fail fast elsewhere.
    if not network_available("huggingface.co"):
        raise unavailable(where, "the Hugging Face hub")
    return model_cls.from_pretrained(where)
