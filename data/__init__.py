"""Media decoding, manifests, datasets, caching and the synthetic corpus
(installed as ``crossmodal.data``)."""

from __future__ import annotations
