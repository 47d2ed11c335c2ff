"""crossmodal: video and music in one learned embedding space."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
