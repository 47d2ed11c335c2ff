"""The encoder registry: ``create_encoder(name, pretrained=None, **overrides)``."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crossmodal.encoders.base import Encoder, Modality
from crossmodal.errors import CrossmodalError

Builder = Callable[..., Encoder]


class UnknownEncoderError(CrossmodalError, KeyError):
    """A name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class EncoderEntry:
    """One registered encoder: ``builder(pretrained=None, **overrides)`` returns it."""

    name: str
    modality: Modality
    builder: Builder
    description: str


_REGISTRY: dict[str, EncoderEntry] = {}
# Modules whose import registers the built-in encoders (imported on first lookup).
_BUILTIN_MODULES = ("crossmodal.encoders.video", "crossmodal.encoders.audio")


def register_encoder(name: str, builder: Builder, *, modality: Modality, description: str) -> None:
    """Add ``builder`` under ``name``. Names are unique across modalities."""
    if modality not in ("video", "audio"):
        raise ValueError(f"modality must be 'video' or 'audio', got {modality!r}")
    if name in _REGISTRY:
        raise ValueError(f"encoder {name!r} is already registered")
    _REGISTRY[name] = EncoderEntry(name, modality, builder, description)


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_encoders(modality: Modality | None = None) -> list[str]:
    """Registered names, sorted; only those of ``modality`` when given."""
    _load_builtins()
    if modality not in (None, "video", "audio"):
        raise ValueError(f"modality must be 'video', 'audio' or None, got {modality!r}")
    return sorted(n for n, e in _REGISTRY.items() if modality is None or e.modality == modality)


def get_entry(name: str) -> EncoderEntry:
    """The registry entry of ``name``; an error suggesting close names when unknown."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownEncoderError(
            f"unknown encoder {name!r}.{hint} Registered: {', '.join(list_encoders())}"
        ) from None


def encoder_options(name: str) -> dict[str, Any]:
    """Keyword options of an encoder's builder with their defaults (``...`` = required)."""
    params = inspect.signature(get_entry(name).builder).parameters
    return {
        p.name: (... if p.default is inspect.Parameter.empty else p.default)
        for p in params.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    }


def create_encoder(name: str, pretrained: str | None = None, **overrides: Any) -> Encoder:
    """Build the encoder registered as ``name``.

    ``pretrained``: None (random init), a local file or folder, or a named set of weights
    (a hub name, or a name the encoder documents such as ``"imagenet"``); see
    :mod:`crossmodal.encoders.pretrained`. ``overrides`` change the architecture or the
    declared input (``num_frames=4``, ``hidden_size=64``, ...); unknown ones are errors.
    The result carries ``name`` and ``init_kwargs`` (the overrides, or the full
    architecture when it came from a pretrained folder) so it can be rebuilt.
    """
    entry = get_entry(name)
    signature = inspect.signature(entry.builder)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not takes_any:
        unknown = sorted(set(overrides) - set(signature.parameters) - {"pretrained"})
        if unknown:
            options = ", ".join(k for k in encoder_options(name) if k != "pretrained")
            raise CrossmodalError(
                f"encoder {name!r} has no option {', '.join(map(repr, unknown))}; "
                f"options: {options}"
            )
    encoder = entry.builder(pretrained=pretrained, **overrides)
    encoder.name = name
    if not hasattr(encoder, "init_kwargs"):
        encoder.init_kwargs = dict(overrides)
    return encoder
