"""Exceptions whose messages are written for the user."""

from __future__ import annotations


class CrossmodalError(Exception):
    """Base class: the CLI prints the message of these without a traceback (exit code 2)."""


class MissingDependencyError(CrossmodalError, ImportError):
    """An optional dependency is not installed; the message names the install command."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        how = f"pip install 'crossmodal[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{package} is needed{what}; install it with: {how}")
        self.package = package
