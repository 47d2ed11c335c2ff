"""The encoder registry: ``create_encoder(name, pretrained=None, **overrides)``.

One :class:`~crossmodal.registry.Registry` holds every encoder with its metadata
(``modality``, ``description``, and how it takes pretrained weights). Pretrained weights
are loaded here, once, after the encoder is built (timm's ``build_model_with_cfg`` →
``load_pretrained``), never inside each constructor.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from crossmodal.encoders.base import MODALITIES, Encoder, Modality
from crossmodal.encoders.pretrained import load_encoder_state
from crossmodal.registry import Entry, Registry

Builder = Callable[..., Encoder]
# ``load_pretrained(encoder, pretrained)`` fills a built encoder with weights from a
# file, folder or name (see crossmodal.encoders.pretrained).
WeightsLoader = Callable[[Encoder, "str | os.PathLike[str]"], None]

ENCODERS: Registry[Encoder] = Registry(
    "encoder", builtin_modules=("crossmodal.encoders.video", "crossmodal.encoders.music")
)


def register_encoder(
    name: str,
    builder: Builder,
    *,
    modality: Modality,
    description: str,
    load_pretrained: WeightsLoader | None = None,
    builds_from_pretrained: bool = False,
) -> None:
    """Add ``builder`` (keyword options → a random-init :class:`Encoder`) under ``name``.

    Names are unique across modalities. Pretrained weights: ``load_pretrained(encoder,
    pretrained)`` loads them into the built encoder (default: a file holding the
    encoder's own ``state_dict()``). ``builds_from_pretrained``: the builder takes
    ``pretrained=`` itself, for families whose weights folder also holds the
    architecture (a transformers ``save_pretrained`` folder or hub name).
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    takes_pretrained = "pretrained" in inspect.signature(builder).parameters
    if takes_pretrained != builds_from_pretrained:
        # Weights load in create_encoder; a builder that takes them too would be
        # silently bypassed (or would load them twice).
        raise ValueError(
            f"encoder {name!r}: a builder takes pretrained= only with "
            "builds_from_pretrained=True (its weights folder holds the architecture); "
            "otherwise pass load_pretrained=loader(encoder, pretrained)"
        )
    ENCODERS.register(
        name,
        builder,
        modality=modality,
        description=description,
        load_pretrained=load_pretrained,
        builds_from_pretrained=builds_from_pretrained,
    )


def list_encoders(modality: Modality | None = None) -> list[str]:
    """Registered names, sorted; only those of ``modality`` when given."""
    if modality is None:
        return ENCODERS.names()
    if modality not in MODALITIES:
        raise ValueError(
            f"modality must be one of {', '.join(MODALITIES)} or None, got {modality!r}"
        )
    return ENCODERS.names(modality=modality)


def get_entry(name: str) -> Entry[Encoder]:
    """The registry entry of ``name`` (``factory``, ``meta["modality"]``,
    ``meta["description"]``); :class:`~crossmodal.registry.UnknownNameError` with close
    names when unknown."""
    return ENCODERS.entry(name)


def encoder_options(name: str) -> dict[str, Any]:
    """Keyword options of an encoder's builder with their defaults (``...`` = required)."""
    return {k: v for k, v in ENCODERS.options(name).items() if k != "pretrained"}


def create_encoder(
    name: str, pretrained: str | os.PathLike[str] | None = None, **overrides: Any
) -> Encoder:
    """Build the encoder registered as ``name``.

    ``pretrained``: None (random init), a local file or folder, or a named set of weights
    (a hub name, or a name the encoder documents such as ``"imagenet"``); see
    :mod:`crossmodal.encoders.pretrained`. ``overrides`` change the architecture or the
    declared input (``num_frames=4``, ``hidden_size=64``, ...); unknown ones are
    :class:`~crossmodal.registry.BadArgumentsError`. The result carries ``name`` and
    ``init_kwargs`` (the overrides, or the full architecture when it came from a
    pretrained folder) so it can be rebuilt.
    """
    entry = ENCODERS.entry(name)
    if entry.meta["builds_from_pretrained"]:
        encoder = ENCODERS.create(name, pretrained=pretrained, **overrides)
    else:
        encoder = ENCODERS.create(name, **overrides)
        if pretrained is not None:
            loader = entry.meta["load_pretrained"]
            if loader is None:
                load_encoder_state(encoder, pretrained, name)
            else:
                loader(encoder, pretrained)
    encoder.name = name
    if not hasattr(encoder, "init_kwargs"):
        encoder.init_kwargs = dict(overrides)
    return encoder
