"""The local web app (``crossmodal serve``): music for a video, videos for music, the
library, and dubbing, on FastAPI + uvicorn (the ``crossmodal[app]`` extra)."""

from __future__ import annotations
