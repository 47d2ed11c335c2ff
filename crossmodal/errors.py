"""Exceptions whose messages are written for the user."""

from __future__ import annotations

import re


class CrossmodalError(Exception):
    """Base class: the CLI prints the message of these without a traceback (exit code 2)."""


class MissingDependencyError(CrossmodalError, ImportError):
    """An optional dependency is not installed; the message names the install command."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        how = f"pip install 'crossmodal[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{package} is needed{what}; install it with: {how}")
        self.package = package


def torch_load_reason(err: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one line for the user.

    torch's own message for a refused object advises re-running with
    ``weights_only=False``, which runs arbitrary code from the file: never repeat it.
    """
    text = str(err)
    if "Weights only load failed" in text:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        what = f" ({found.group(1)})" if found else ""
        return (
            f"it holds a Python object{what} beyond tensors and plain values, which crossmodal "
            "refuses to unpickle because loading it could run code from the file; use a file "
            "written by crossmodal, or re-save the weights as a plain state dict from code you trust"
        )
    first = re.sub(r"\x1b\[[0-9;]*m", "", text).strip().split(". ")[0].splitlines()
    return f"{type(err).__name__}: {first[0] if first else ''}".rstrip(": ")
