"""Errors of the data layer: every one names the file (or manifest line) and the reason."""

from __future__ import annotations

import os

from crossmodal.errors import CrossmodalError


class MediaError(CrossmodalError):
    """A media file cannot give what was asked of it. ``path`` and ``reason`` are kept."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Pickle by (path, reason) so errors cross process boundaries (DataLoader workers,
        # the isolated decoder) intact.
        return (type(self), (self.path, self.reason))


class MissingMediaError(MediaError):
    """The file does not exist (or is not a regular file)."""


class CorruptMediaError(MediaError):
    """The file is empty, not media, truncated, or its decoder failed."""


class NoStreamError(MediaError):
    """The file has no stream of the kind needed (a video without audio, an audio file
    where a video was expected)."""


class TooShortError(MediaError):
    """The media ends before the requested window does."""


class DecoderCrashError(MediaError):
    """The decoder killed or hung the process it ran in (see :mod:`.isolate`)."""


class ManifestError(CrossmodalError):
    """A manifest line is malformed; the message names the file and line."""
