"""Retrieval metrics (instance and category level) for both directions of matching."""

from __future__ import annotations

from crossmodal.evaluation.metrics import (
    DEFAULT_KS,
    category_metrics,
    chance_recall,
    instance_metrics,
    kmeans_nmi,
    new_video_mood_share,
    normalized_mutual_information,
)
from crossmodal.evaluation.ranking import QueryRanks, rank_queries

__all__ = [
    "DEFAULT_KS",
    "QueryRanks",
    "category_metrics",
    "chance_recall",
    "instance_metrics",
    "kmeans_nmi",
    "new_video_mood_share",
    "normalized_mutual_information",
    "rank_queries",
]
