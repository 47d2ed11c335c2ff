"""Shared plumbing of the decoders: decord import and its error types, error messages."""

from __future__ import annotations

import re
from typing import Any

from crossmodal.errors import MissingDependencyError

_DECORD_PREFIX = re.compile(r"^\[[\d:]+\] \S+:\d+: ")


def decord_module() -> Any:
    """decord, with its ffmpeg log silenced: failures reach callers as exceptions carrying
    the reason, so the same message need not also be printed to stderr."""
    try:
        import decord
    except ImportError as err:
        raise MissingDependencyError("decord", purpose="video decoding") from err
    decord.logging.set_level(decord.logging.QUIET)
    return decord


def decoder_errors(decord: Any) -> tuple[type[BaseException], ...]:
    """Exception types decord raises for media it cannot decode."""
    return (RuntimeError, decord.DECORDError)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (decoders add long stack traces)."""
    text = str(err).strip().splitlines()
    if not text:
        return type(err).__name__
    # decord prefixes "[hh:mm:ss] /path/of/its/source.cc:123: "; the reason follows it.
    return _DECORD_PREFIX.sub("", text[0])[:300]
