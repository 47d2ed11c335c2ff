"""Video and music encoders (installed as ``crossmodal.encoders``)."""

from __future__ import annotations
