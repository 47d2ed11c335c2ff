"""Lazy package exports: a package names what it re-exports and from where, and each
name is imported on first access, so ``import crossmodal.data`` stays cheap (no decord,
torchaudio or PyAV until something needs them)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    ``exports`` maps an exported name to the module that defines it; the first access
    imports that module and caches the value in ``namespace`` (the package's
    ``globals()``), so later accesses are plain attribute lookups.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
