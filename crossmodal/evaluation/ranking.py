"""Rank computations shared by the retrieval metrics, chunked over queries.

Scores are similarities (higher = better). Ties are broken *pessimistically*: a gallery
item that is not relevant and scores exactly the same as a relevant one is ranked before
it. So a constant score function earns the worst possible rank, never a lucky one.

Memory: each chunk holds a (chunk_size × gallery) score matrix, so a 100k gallery with
the default chunk of 256 queries needs ~100 MB, never an n×n matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch


@dataclass
class QueryRanks:
    """Per-query results for one chunk of queries.

    first_rank: 1-based rank of the best-ranked relevant item, (c,) long; 0 where the
        query has no relevant item in the gallery.
    average_precision: AP over all relevant items, (c,) float64; NaN where none.
    map_at_r: MAP@R (Musgrave et al. 2020) with R = num_relevant, (c,) float64; NaN where
        none: ``(1/R) Σ_{i≤R} P(i)·rel(i)``.
    num_relevant: number of relevant gallery items, (c,) long.
    """

    first_rank: torch.Tensor
    average_precision: torch.Tensor
    map_at_r: torch.Tensor
    num_relevant: torch.Tensor


Scorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(queries (c, D), gallery (N, D)) → (c, N) similarities; the default is the dot product.
A two-part model's :meth:`~crossmodal.embedding_layout.EmbeddingLayout.scores` is one."""


def _scores(queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    return queries @ gallery.T


def rank_chunk(scores: torch.Tensor, relevant: torch.Tensor) -> QueryRanks:
    """Ranks for a block of queries given their scores (c, N) and relevance mask (c, N).

    For the i-th relevant item (1-based, relevant items sorted by descending score) its
    pessimistic rank is ``i + #{non-relevant j : s_j >= s_(i)}``; AP is the mean over
    relevant items of ``i / rank_i``; MAP@R sums only the terms with ``rank_i <= R``
    (R = number of relevant items) and divides by R.
    """
    if scores.shape != relevant.shape:
        raise ValueError(
            f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} differ"
        )
    scores = scores.double()
    num_rel = relevant.sum(dim=1)
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    # Non-relevant scores sorted ascending, relevant ones pushed to -inf at the front.
    nonrel_sorted = torch.where(relevant, neg_inf, scores).sort(dim=1).values
    n = scores.shape[1]
    # Relevant scores sorted descending; padding (-inf) at the end of each row.
    rel_scores = torch.where(relevant, scores, neg_inf).sort(dim=1, descending=True).values
    max_rel = int(num_rel.max().item()) if num_rel.numel() else 0
    rel_scores = rel_scores[:, : max(max_rel, 1)].contiguous()
    # count of non-relevant scores >= each relevant score
    ge = n - torch.searchsorted(nonrel_sorted, rel_scores, side="left")
    position = torch.arange(1, rel_scores.shape[1] + 1, device=scores.device).expand_as(ge)
    valid = position <= num_rel[:, None]
    ranks = position + ge
    precision = torch.where(valid, position.double() / ranks.double(), 0.0)
    has_rel = num_rel > 0
    denom = num_rel.clamp(min=1).double()
    ap = torch.where(has_rel, precision.sum(dim=1) / denom, float("nan"))
    within_r = ranks <= num_rel[:, None]
    map_r = torch.where(has_rel, (precision * within_r).sum(dim=1) / denom, float("nan"))
    first = torch.where(has_rel, ranks[:, 0], 0)
    return QueryRanks(
        first_rank=first.long(), average_precision=ap, map_at_r=map_r, num_relevant=num_rel.long()
    )


def iter_query_chunks(queries: torch.Tensor, chunk_size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges covering ``queries`` in blocks of ``chunk_size``."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, queries.shape[0], chunk_size):
        yield start, min(start + chunk_size, queries.shape[0])


def rank_queries(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    query_keys: torch.Tensor,
    gallery_keys: torch.Tensor,
    chunk_size: int = 256,
    scorer: Scorer | None = None,
) -> QueryRanks:
    """Rank every gallery item for every query; a gallery item is relevant to a query when
    their keys are equal (e.g. the same ``track_id``). ``scorer``: how a query scores the
    gallery (default: the dot product)."""
    _check_inputs(queries, gallery, query_keys, gallery_keys)
    score = scorer or _scores
    parts = []
    for start, stop in iter_query_chunks(queries, chunk_size):
        scores = score(queries[start:stop], gallery)
        relevant = query_keys[start:stop, None] == gallery_keys[None, :]
        parts.append(rank_chunk(scores, relevant))
    return QueryRanks(
        first_rank=torch.cat([p.first_rank for p in parts]),
        average_precision=torch.cat([p.average_precision for p in parts]),
        map_at_r=torch.cat([p.map_at_r for p in parts]),
        num_relevant=torch.cat([p.num_relevant for p in parts]),
    )


def _check_inputs(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    query_keys: torch.Tensor,
    gallery_keys: torch.Tensor,
) -> None:
    if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"expected (Nq, D) queries and (Ng, D) gallery, got {tuple(queries.shape)} "
            f"and {tuple(gallery.shape)}"
        )
    if query_keys.shape != (queries.shape[0],) or gallery_keys.shape != (gallery.shape[0],):
        raise ValueError("one key per query and per gallery item is required")
    if gallery.shape[0] == 0:
        raise ValueError("the gallery is empty")
    for name, t in (("queries", queries), ("gallery", gallery)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contain NaN or inf embeddings")
