"""Retrieval metrics for cross-modal evaluation, in both directions.

Instance level (``track_id`` as the key: every gallery clip sharing the query's track is
relevant): R@K (the share of queries whose best-ranked relevant item is within the top
K), MedR / MeanR (median / mean of that rank, 1-based), mAP (mean average precision over
all relevant items).

Category level (``label`` as the key, e.g. mood): P@1, MAP@R, and NMI of a k-means
clustering of the embeddings against the labels.

Ties are pessimistic (see :mod:`crossmodal.evaluation.ranking`). Queries without any
relevant gallery item are left out of the averages and counted in ``queries_skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from crossmodal.evaluation.ranking import Scorer, rank_queries

DEFAULT_KS = (1, 5, 10)


def instance_metrics(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    query_keys: torch.Tensor,
    gallery_keys: torch.Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int = 256,
    scorer: Scorer | None = None,
) -> dict[str, float]:
    """R@K for each K in ``ks``, MedR, MeanR and mAP of ``queries`` against ``gallery``
    (``scorer``: see :func:`~crossmodal.evaluation.ranking.rank_queries`)."""
    ranks = rank_queries(
        queries, gallery, query_keys, gallery_keys, chunk_size=chunk_size, scorer=scorer
    )
    return metrics_from_ranks(ranks.first_rank, ranks.average_precision, ks)


def metrics_from_ranks(
    first_rank: torch.Tensor, average_precision: torch.Tensor, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """R@K, MedR, MeanR and mAP from per-query first relevant ranks (0: no relevant item,
    left out and counted in ``queries_skipped``) and average precisions."""
    valid = first_rank > 0
    first = first_rank[valid].double()
    out: dict[str, float] = {}
    if first.numel() == 0:
        raise ValueError("no query has a relevant item in the gallery: nothing to evaluate")
    for k in ks:
        out[f"R@{k}"] = float((first <= k).double().mean())
    out["MedR"] = float(first.quantile(0.5))  # midpoint of the two middle ranks when even
    out["MeanR"] = float(first.mean())
    out["mAP"] = float(average_precision[valid].mean())
    out["queries"] = int(valid.sum())
    out["queries_skipped"] = int((~valid).sum())
    return out


def category_metrics(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    query_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    chunk_size: int = 256,
    scorer: Scorer | None = None,
) -> dict[str, float]:
    """P@1 and MAP@R with category labels as the relevance key."""
    ranks = rank_queries(
        queries, gallery, query_labels, gallery_labels, chunk_size=chunk_size, scorer=scorer
    )
    valid = ranks.num_relevant > 0
    if not valid.any():
        raise ValueError("no query label occurs in the gallery: nothing to evaluate")
    return {
        "P@1": float((ranks.first_rank[valid] == 1).double().mean()),
        "MAP@R": float(ranks.map_at_r[valid].mean()),
    }


def new_video_mood_share(
    video_emb: torch.Tensor,
    music_emb: torch.Tensor,
    tracks: torch.Tensor,
    labels: torch.Tensor,
    k: int = 10,
    chunk_size: int = 256,
    scorer: Scorer | None = None,
) -> float:
    """ "Music for a new video": each video queries the music gallery with its own track
    (every gallery item of that track) removed; the mean share of its top-``k`` tracks
    whose label is the video's. Chance is about the share of the video's label."""
    if video_emb.shape[0] != tracks.shape[0] or music_emb.shape[0] != tracks.shape[0]:
        raise ValueError("video, music, tracks and labels must have one row per clip")
    shares = []
    for start in range(0, video_emb.shape[0], chunk_size):
        stop = start + chunk_size
        queries = video_emb[start:stop].float()
        sims = (scorer or _dot)(queries, music_emb.float())
        own = tracks[start:stop, None] == tracks[None, :]
        sims = sims.masked_fill(own, float("-inf"))
        top = sims.topk(min(k, sims.shape[1]), dim=1).indices
        kept = (~own).sum(1).clamp(max=k)
        same = labels[top] == labels[start:stop, None]
        # A gallery with fewer than k other tracks: only the real ones count.
        valid = torch.arange(top.shape[1])[None, :] < kept[:, None]
        shares.append((same & valid).sum(1).double() / kept.clamp(min=1).double())
    return float(torch.cat(shares).mean())


def _dot(queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    return queries @ gallery.T


def normalized_mutual_information(labels: np.ndarray, clusters: np.ndarray) -> float:
    """NMI = 2·I(Y; C) / (H(Y) + H(C)) (arithmetic normalisation), in nats.

    1.0 when both partitions are trivial (one class and one cluster) by convention, as the
    two partitions are then identical.
    """
    labels = np.asarray(labels)
    clusters = np.asarray(clusters)
    if labels.shape != clusters.shape or labels.ndim != 1:
        raise ValueError("labels and clusters must be 1-D arrays of the same length")
    n = labels.size
    if n == 0:
        raise ValueError("NMI of an empty set")
    _, y = np.unique(labels, return_inverse=True)
    _, c = np.unique(clusters, return_inverse=True)
    joint = np.zeros((y.max() + 1, c.max() + 1), dtype=np.float64)
    np.add.at(joint, (y, c), 1.0)
    p = joint / n
    py = p.sum(axis=1)
    pc = p.sum(axis=0)
    h_y = -float(np.sum(py * np.log(py)))
    h_c = -float(np.sum(pc * np.log(pc)))
    nz = p > 0
    mutual = float(np.sum(p[nz] * np.log(p[nz] / np.outer(py, pc)[nz])))
    if h_y + h_c == 0.0:
        return 1.0
    return 2.0 * mutual / (h_y + h_c)


def kmeans_nmi(embeddings: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> float:
    """Cluster ``embeddings`` into as many clusters as there are labels (faiss k-means,
    spherical, 5 restarts, seeded) and return the NMI of the clustering against ``labels``."""
    import faiss

    labels_np = labels.cpu().numpy()
    num_classes = len(np.unique(labels_np))
    x = np.ascontiguousarray(embeddings.detach().cpu().numpy(), dtype=np.float32)
    if num_classes < 2 or x.shape[0] <= num_classes:
        raise ValueError("NMI needs at least two labels and more points than labels")
    # The clustering parameters go to the constructor: faiss copies them into its
    # ClusteringParameters there (attributes set afterwards are ignored). A few points
    # per centroid is the normal case for NMI, so faiss's "please provide at least …
    # training points" line (printed from C++, straight to stderr) must not fire; all
    # points are used, never a sample.
    kmeans = faiss.Kmeans(
        x.shape[1],
        num_classes,
        niter=50,
        nredo=5,
        seed=seed,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=max(x.shape[0], 1),
    )
    kmeans.train(x)
    _, assignment = kmeans.index.search(x, 1)
    return normalized_mutual_information(labels_np, assignment[:, 0])


def chance_recall(query_keys: torch.Tensor, gallery_keys: torch.Tensor, k: int) -> float:
    """Expected R@K of a random ranking: for a query with m relevant items among N,
    ``1 - C(N-m, K) / C(N, K)``, averaged over queries that have a relevant item."""
    n = gallery_keys.numel()
    k = min(k, n)
    values, counts = torch.unique(gallery_keys, return_counts=True)
    count_of = dict(zip(values.tolist(), counts.tolist(), strict=True))
    total, used = 0.0, 0
    for key in query_keys.tolist():
        m = count_of.get(key, 0)
        if m == 0:
            continue
        used += 1
        if n - m < k:
            total += 1.0
            continue
        log_miss = (
            math.lgamma(n - m + 1)
            - math.lgamma(n - m - k + 1)
            - math.lgamma(n + 1)
            + math.lgamma(n - k + 1)
        )
        total += 1.0 - math.exp(log_miss)
    if used == 0:
        raise ValueError("no query has a relevant item in the gallery")
    return total / used
