"""Search knobs chosen for a recall target, measured at build time against exact search.

An approximate index (HNSW, IVF-PQ) has one knob that trades speed for recall: the HNSW
beam width ``efSearch`` or the number of IVF lists visited, ``nprobe``. A fixed default
that is fine at 100k vectors loses recall at 1M (bench/results/index.md), so the store
measures instead of guessing: it takes ``params.recall_sample`` stored vectors as
queries, finds their exact top-``recall_k`` by brute force (float32 matmul in chunks),
and raises the knob from small to large until the index finds ``params.recall_target``
of them (the sample mean less two standard errors, so that the target holds beyond the
sample's noise). The chosen value and the recall it reached are stored in the index's
parameters (its header in the version folder), printed by ``crossmodal index``, and used
by every search that does not pass its own knob.

When the catalog's window → item map is given, recall is measured the way users see
results: the *items* the per-item search returns (best window per item, the same
over-fetch as :meth:`StoreSnapshot.search`) against the exact per-item top-k (each
item scored by its best window). A query's own window is left out of both sides, so the
trivial self-match does not inflate the figure.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from crossmodal.retrieval.best_window import first_per_item

if TYPE_CHECKING:
    from crossmodal.retrieval.catalog import WindowTable
    from crossmodal.retrieval.vector_index import VectorIndex

log = logging.getLogger(__name__)

EF_SEARCH_STEPS: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
# Query rows per exact-search chunk: bounds the (chunk × N) similarity block (64 MiB at 1M).
_EXACT_CHUNK = 16


@dataclass(frozen=True)
class TuningResult:
    """What the tuning chose: the knob (``"ef_search"``/``"nprobe"``), its value, the
    recall measured with it, whether that met the target, and every value tried."""

    knob: str
    value: int
    recall: float
    met: bool
    tried: tuple[tuple[int, float], ...]


def tune_index(
    index: VectorIndex,
    table: WindowTable | None = None,
    rows: np.ndarray | None = None,
    ids: np.ndarray | None = None,
) -> TuningResult | None:
    """Tune ``index``'s search knob in place for ``index.params.recall_target``.

    ``rows``/``ids``: the index's live vectors (aligned); read back from the index when
    omitted (flat and HNSW keep them; IVF-PQ does not, so an IVF-PQ index updated
    without its vectors keeps the values it had). ``table``: the catalog's windows, to
    measure item recall; without it window recall is measured. Returns what was chosen
    (None when nothing was tuned).
    """
    params = index.params
    if params.recall_target is None or len(index) == 0:
        return None
    if index.kind == "flat":
        index.params = replace(params, measured_recall=1.0)
        return None
    if rows is None or ids is None:
        if index.kind == "ivfpq":
            log.info(
                "ivfpq index updated without its original vectors: nprobe stays %d "
                "(measured recall %s); rebuild to re-tune",
                params.ivf_nprobe,
                params.measured_recall,
            )
            return None
        ids, rows = index.vectors()
    item_of = None
    if table is not None:
        pos = table.positions(ids)
        if (pos < 0).any():
            raise ValueError("vectors without a catalog window cannot be tuned for item recall")
        item_of = table.item_ids[pos]
    result = choose_knob(index, rows, ids)
    if item_of is not None:
        # Both must hold: window searches use the knob as it is, per-item ones over-fetch;
        # the item figure (what users see) is the one stored.
        by_items = choose_knob(index, rows, ids, item_of, start=result.value)
        result = TuningResult(
            by_items.knob,
            by_items.value,
            by_items.recall,
            result.met and by_items.met,
            result.tried + by_items.tried,
        )
    if index.kind == "hnsw":
        index.params = replace(params, hnsw_ef_search=result.value, measured_recall=result.recall)
    else:
        index.params = replace(params, ivf_nprobe=result.value, measured_recall=result.recall)
    level = logging.INFO if result.met else logging.WARNING
    log.log(
        level,
        "%s: %s=%d gives recall@%d %s %.3f (target %.2f)%s",
        index.kind,
        result.knob,
        result.value,
        params.recall_k,
        "items" if item_of is not None else "windows",
        result.recall,
        params.recall_target,
        "" if result.met else " — the target is out of this index's reach; use --kind flat or hnsw",
    )
    return result


def choose_knob(
    index: VectorIndex,
    rows: np.ndarray,
    ids: np.ndarray,
    item_of: np.ndarray | None = None,
    *,
    start: int = 1,
) -> TuningResult:
    """Smallest knob value (from ``start``) whose recall reaches ``index.params.recall_target``.

    Tries :data:`EF_SEARCH_STEPS` (HNSW) or powers of two up to nlist (IVF-PQ), small
    to large, and stops at the first whose recall, less two standard errors of the
    sample mean (:func:`recall_bound`), meets the target; if none does, the value with
    the best recall (the largest, normally) is returned with ``met=False``.
    """
    params = index.params
    assert params.recall_target is not None
    k = min(params.recall_k, len(np.unique(item_of)) - 1 if item_of is not None else len(ids) - 1)
    if k < 1:
        return TuningResult(_knob(index), _current(index), 1.0, True, ())
    rng = np.random.default_rng(params.seed)
    sample = np.sort(rng.choice(len(ids), min(params.recall_sample, len(ids)), replace=False))
    exact = exact_top(rows, sample, k, item_of)
    if index.kind == "hnsw":
        values: list[int] = list(EF_SEARCH_STEPS)
    else:
        nlist = int(index.faiss_index.nlist)
        values = [2**i for i in range(int(math.log2(nlist)) + 1)] + [nlist]
        values = sorted(set(values))
    values = [v for v in values if v >= start] or [max(values)]
    tried: list[tuple[int, float]] = []
    for value in values:
        found = approximate_top(index, rows, ids, sample, k, item_of, value)
        recall, lower = recall_bound(found, exact)
        tried.append((value, recall))
        if lower >= params.recall_target:
            return TuningResult(_knob(index), value, recall, True, tuple(tried))
    best_value, best_recall = max(tried, key=lambda t: (t[1], t[0]))
    return TuningResult(_knob(index), best_value, best_recall, False, tuple(tried))


def recall_bound(found: list[set[int]], exact: list[set[int]]) -> tuple[float, float]:
    """Mean recall over the sample queries and its lower bound (mean − 2 standard errors).

    The knob is chosen on the bound, so the target holds beyond the sample's noise
    (1M windows: a knob whose sample mean just met 0.95 gave 0.945 on fresh queries).
    """
    shares = np.array([len(f & e) / len(e) for f, e in zip(found, exact, strict=True)])
    mean = float(shares.mean())
    spread = float(shares.std(ddof=1) / np.sqrt(len(shares))) if len(shares) > 1 else 0.0
    return mean, mean - 2.0 * spread


def _knob(index: VectorIndex) -> str:
    return "ef_search" if index.kind == "hnsw" else "nprobe"


def _current(index: VectorIndex) -> int:
    return index.params.hnsw_ef_search if index.kind == "hnsw" else index.params.ivf_nprobe


def exact_top(
    rows: np.ndarray, sample: np.ndarray, k: int, item_of: np.ndarray | None = None
) -> list[set[int]]:
    """Exact top-``k`` of each ``rows[sample]`` query among ``rows``, itself left out.

    Returns sets of row positions, or of item ids when ``item_of`` is given (an item
    scored by its best window). Brute force in chunks of queries.
    """
    if item_of is not None:
        by_item = np.argsort(item_of, kind="stable")
        sorted_items = item_of[by_item]
        starts = np.flatnonzero(np.r_[True, sorted_items[1:] != sorted_items[:-1]])
        item_ids = sorted_items[starts]
    out: list[set[int]] = []
    for lo in range(0, len(sample), _EXACT_CHUNK):
        chunk = sample[lo : lo + _EXACT_CHUNK]
        sims = rows[chunk] @ rows.T
        sims[np.arange(len(chunk)), chunk] = -np.inf
        if item_of is not None:
            sims = np.maximum.reduceat(sims[:, by_item], starts, axis=1)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        labels = item_ids[top] if item_of is not None else top
        out.extend(set(row.tolist()) for row in labels)
    return out


def approximate_top(
    index: VectorIndex,
    rows: np.ndarray,
    ids: np.ndarray,
    sample: np.ndarray,
    k: int,
    item_of: np.ndarray | None,
    value: int,
) -> list[set[int]]:
    """What ``index`` returns for the same queries with knob ``value`` (same labels as
    :func:`exact_top`): windows fetched as the store's per-item search does."""
    if item_of is not None:
        per_item = len(ids) / len(np.unique(item_of))
        fetch = max(k, math.ceil(k * per_item)) + 1
    else:
        fetch = k + 1
    knobs = {"ef_search": value} if index.kind == "hnsw" else {"nprobe": value}
    _, found_ids = index._search_rows(
        np.ascontiguousarray(rows[sample]),
        min(fetch, len(ids)),
        knobs.get("nprobe"),
        knobs.get("ef_search"),
    )
    order = np.argsort(ids)
    pos = order[np.minimum(np.searchsorted(ids, found_ids, sorter=order), len(ids) - 1)]
    pos = np.where((found_ids >= 0) & (ids[pos] == found_ids), pos, -1)
    pos[pos == sample[:, None]] = -1  # the query's own window
    if item_of is None:
        return [set(row[row >= 0][:k].tolist()) for row in pos]
    labels = np.where(pos >= 0, item_of[pos], -1)
    keep = first_per_item(labels, k)
    return [set(row[m].tolist()) for row, m in zip(labels, keep, strict=True)]


def describe_search_params(root: str | os.PathLike[str]) -> list[str]:
    """One line per modality of the published version at ``root``: kind, tuned knob, recall."""
    from crossmodal.retrieval.store import IndexStore

    lines = []
    with IndexStore.open(root) as store:
        for modality in store.snapshot.modalities:
            index = store.snapshot.index(modality)
            params = index.params
            knob = {
                "hnsw": f"efSearch={params.hnsw_ef_search}",
                "ivfpq": f"nprobe={params.ivf_nprobe}",
            }.get(index.kind, "exact search")
            measured = (
                f"measured recall@{params.recall_k} {params.measured_recall:.3f}"
                if params.measured_recall is not None
                else "recall not measured"
            )
            lines.append(f"{modality}: {index.kind}, {len(index)} windows, {knob}, {measured}")
    return lines
