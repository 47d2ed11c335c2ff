"""The one similarity matrix and the label masks every pairwise loss and miner works on.

Queries are the rows (``embeddings``, N_q×D), references the columns (``ref_emb``,
N_r×D). Without ``ref_emb`` the batch is compared with itself and the diagonal (an
item paired with itself) is neither a positive nor a negative. That choice is made from
``ref_emb is None`` alone, never from tensor identity: passing ``ref_emb=emb,
ref_labels=labels`` explicitly is a cross-modal call whose diagonal pairs are positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# Below this squared distance a pair counts as coincident: its distance is 0 and carries
# no gradient (sqrt has an infinite slope at 0, which would turn into NaN).
SQDIST_EPS = 1e-12


def as_float(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A bool mask as 0/1 in ``dtype``, through ``uint8``: on CPU, converting a bool
    tensor directly is several times slower (than this and than the losses' own passes)."""
    return mask.view(torch.uint8).to(dtype)


def _check_embeddings(name: str, emb: Tensor) -> None:
    if not isinstance(emb, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(emb).__name__}")
    if emb.ndim != 2:
        raise ValueError(f"{name} must be 2-D (batch, dim), got shape {tuple(emb.shape)}")
    if not emb.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {emb.dtype}")
    if emb.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    # One reduction finds any NaN/inf (they propagate into the sum); only then look closer.
    if not bool(torch.isfinite(emb.detach().sum())):
        bad = int((~torch.isfinite(emb.detach())).any(dim=1).sum())
        if bad:
            raise ValueError(f"{name} contains NaN or inf values (in {bad} of {emb.shape[0]} rows)")


def _check_labels(name: str, labels: Tensor, rows: int, emb_name: str) -> None:
    if not isinstance(labels, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D (batch,), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} must hold integer class ids, got {labels.dtype}")
    if labels.shape[0] != rows:
        raise ValueError(
            f"{emb_name} has {rows} rows but {name} has {labels.shape[0]} entries; "
            "they must match one to one"
        )


def check_inputs(
    embeddings: Tensor,
    labels: Tensor,
    ref_emb: Tensor | None = None,
    ref_labels: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Validate a loss/miner call; return ``labels`` and ``ref_labels`` on the embeddings' device.

    Raises ``ValueError`` naming the problem: embeddings not 2-D floating point, empty,
    NaN/inf values, labels not 1-D integers, batch sizes that differ, ``ref_emb`` without
    ``ref_labels`` (or the reverse), different embedding widths, dtypes or devices.
    """
    _check_embeddings("embeddings", embeddings)
    _check_labels("labels", labels, embeddings.shape[0], "embeddings")
    labels = labels.to(embeddings.device)
    if ref_emb is None and ref_labels is None:
        return labels, None
    if ref_emb is None or ref_labels is None:
        raise ValueError("ref_emb and ref_labels must be given together (or both omitted)")
    _check_embeddings("ref_emb", ref_emb)
    _check_labels("ref_labels", ref_labels, ref_emb.shape[0], "ref_emb")
    if ref_emb.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"embeddings have dim {embeddings.shape[1]} but ref_emb has dim {ref_emb.shape[1]}"
        )
    if ref_emb.dtype != embeddings.dtype:
        raise ValueError(f"embeddings are {embeddings.dtype} but ref_emb is {ref_emb.dtype}")
    if ref_emb.device != embeddings.device:
        raise ValueError(f"embeddings are on {embeddings.device} but ref_emb on {ref_emb.device}")
    return labels, ref_labels.to(embeddings.device)


def _check_masks(masks: Sequence[tuple[Tensor, Tensor]], shape: torch.Size) -> None:
    for pair in masks:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError("miner masks must be a (pos_mask, neg_mask) pair of bool tensors")
        for name, mask in (("pos_mask", pair[0]), ("neg_mask", pair[1])):
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
                raise ValueError(f"miner {name} must be a bool tensor")
            if mask.shape != shape:
                raise ValueError(
                    f"miner {name} has shape {tuple(mask.shape)} but the similarity matrix "
                    f"is {tuple(shape)} (queries × references)"
                )


@dataclass(eq=False)
class PairBatch:
    """Rows of the similarity matrix with what is needed to derive masks and distances.

    A ``PairBatch`` covers query rows ``row_start … row_start + n − 1`` against all N_r
    references; :meth:`split` cuts it into row blocks that share the references.

    Attributes:
        sim: (n, N_r) similarities ``q_i · r_j`` (cosine when ``normalized``).
        labels: (n,) labels of these query rows; ``ref_labels``: (N_r,).
        query: (n, D) compared query vectors; ``ref``: (N_r, D) compared references.
        normalized: whether the vectors were L2-normalised before the matmul.
        self_ref: True when the batch is compared with itself (``ref_emb`` omitted).
        row_start: index of the first row in the full query set (locates the diagonal).
        masks: extra (pos_mask, neg_mask) pairs (n, N_r) ANDed into the label masks.
        shared: reference-side values computed once and shared by all row blocks.

    Masks come as bool (:attr:`pos`, :attr:`neg`, for miners and callers) and as 0/1
    floats in the similarities' dtype (:attr:`pos_f`, :attr:`neg_f`): the losses' kernels
    multiply by those, which on CPU is several times faster than masked selection.
    Masks, norms and distances are computed on first use and cached on the object.
    """

    sim: Tensor
    labels: Tensor
    ref_labels: Tensor
    query: Tensor
    ref: Tensor
    normalized: bool
    self_ref: bool
    row_start: int = 0
    masks: tuple[tuple[Tensor, Tensor], ...] = ()
    shared: dict[str, Any] = field(default_factory=dict, repr=False)
    _cache: dict[str, Tensor | None] = field(default_factory=dict, repr=False)

    @property
    def dim(self) -> int:
        """The embedding width D."""
        return self.query.shape[1]

    def _diagonal(self) -> tuple[Tensor, Tensor]:
        """(rows, columns) of this block's entries on the diagonal (self case)."""
        rows = torch.arange(self.sim.shape[0], device=self.sim.device)
        cols = rows + self.row_start
        inside = cols < self.sim.shape[1]
        return rows[inside], cols[inside]

    def _same(self) -> Tensor:
        if "same" not in self._cache:
            self._cache["same"] = self.labels[:, None] == self.ref_labels[None, :]
        return self._cache["same"]

    @property
    def pos(self) -> Tensor:
        """(n, N_r) bool: same label, not the diagonal (self case), within every mask."""
        if "pos" not in self._cache:
            pos = self._same()
            if self.self_ref:
                pos = pos.clone()
                pos[self._diagonal()] = False
            for mask, _ in self.masks:
                pos = pos & mask
            self._cache["pos"] = pos
        return self._cache["pos"]

    @property
    def neg(self) -> Tensor:
        """(n, N_r) bool: different labels, within every mask."""
        if "neg" not in self._cache:
            neg = ~self._same()
            for _, mask in self.masks:
                neg = neg & mask
            self._cache["neg"] = neg
        return self._cache["neg"]

    def _same_f(self) -> Tensor:
        if "same_f" not in self._cache:
            self._cache["same_f"] = as_float(self._same(), self.sim.dtype)
        return self._cache["same_f"]

    @property
    def pos_f(self) -> Tensor:
        """:attr:`pos` as 0/1 in the similarities' dtype."""
        if "pos_f" not in self._cache:
            pos = self._same_f()
            if self.self_ref or self.masks:
                pos = pos.clone()
            if self.self_ref:
                pos[self._diagonal()] = 0.0
            for mask, _ in self.masks:
                pos.mul_(as_float(mask, pos.dtype))
            self._cache["pos_f"] = pos
        return self._cache["pos_f"]

    @property
    def neg_f(self) -> Tensor:
        """:attr:`neg` as 0/1 in the similarities' dtype."""
        if "neg_f" not in self._cache:
            neg = 1.0 - self._same_f()
            for _, mask in self.masks:
                neg.mul_(as_float(mask, neg.dtype))
            self._cache["neg_f"] = neg
        return self._cache["neg_f"]

    @property
    def pos_count(self) -> Tensor:
        """(n, 1) number of positives per row (float)."""
        if "pos_count" not in self._cache:
            self._cache["pos_count"] = self.pos_f.sum(1, keepdim=True)
        return self._cache["pos_count"]

    @property
    def neg_count(self) -> Tensor:
        """(n, 1) number of negatives per row (float)."""
        if "neg_count" not in self._cache:
            self._cache["neg_count"] = self.neg_f.sum(1, keepdim=True)
        return self._cache["neg_count"]

    @property
    def query_sqnorm(self) -> Tensor:
        """(n,) squared norms of the compared query vectors."""
        if "query_sqnorm" not in self._cache:
            self._cache["query_sqnorm"] = self.query.pow(2).sum(1)
        return self._cache["query_sqnorm"]

    @property
    def ref_sqnorm(self) -> Tensor:
        """(N_r,) squared norms of the compared references (shared by all row blocks)."""
        if "ref_sqnorm" not in self.shared:
            self.shared["ref_sqnorm"] = self.ref.pow(2).sum(1)
        return self.shared["ref_sqnorm"]

    def _unclamped_sq_distance(self) -> Tensor:
        """A new buffer ``|q|² + |r|² − 2 q·r`` (may dip below 0 by rounding)."""
        sq = torch.add(self.query_sqnorm[:, None], self.ref_sqnorm[None, :])
        return sq.add_(self.sim, alpha=-2.0)

    def _sq_distance(self) -> Tensor:
        if "sqdist" not in self._cache:
            self._cache["sqdist"] = self._unclamped_sq_distance().clamp_min_(0.0)
        return self._cache["sqdist"]

    def distance(self, squared: bool = False) -> Tensor:
        """Euclidean distances from the same matmul: ``d² = |q|² + |r|² − 2 q·r``.

        For unit vectors this is ``sqrt(2 − 2 cos)``. Coincident pairs (d² ≤ 1e-12) get
        distance exactly 0 and zero gradient, so duplicates never produce NaN.
        """
        if squared:
            return self._sq_distance()
        if "dist" not in self._cache:
            coincident = self.coincident()
            floor = self.distance_floor()
            self._cache["dist"] = (
                floor if coincident is None else floor.masked_fill(coincident, 0.0)
            )
        return self._cache["dist"]

    def distance_floor(self) -> Tensor:
        """``sqrt(max(d², 1e-12))``: the distance, never 0 (a safe divisor)."""
        if "dist_floor" not in self._cache:
            if self.shared.get("may_coincide", True) is False and "sqdist" not in self._cache:
                # No d² is ≤ 1e-12, so the squared distances are not needed apart: one
                # buffer, clamped and square-rooted in place.
                sq = self._unclamped_sq_distance()
                self._cache["dist_floor"] = sq.clamp_min_(SQDIST_EPS).sqrt_()
            else:
                self._cache["dist_floor"] = self._sq_distance().clamp_min(SQDIST_EPS).sqrt_()
        return self._cache["dist_floor"]

    def coincident(self) -> Tensor | None:
        """Bool, True where ``d² ≤ 1e-12`` (coincident points: distance 0, no gradient);
        None when :meth:`find_coincident` ruled out any such pair for the whole call."""
        if self.shared.get("may_coincide", True) is False:
            return None
        if "coincident" not in self._cache:
            self._cache["coincident"] = self._sq_distance().le(SQDIST_EPS)
        return self._cache["coincident"]

    def find_coincident(self) -> None:
        """Decide once for the whole call (all row blocks) whether a pair can coincide.

        From a lower bound of every ``d²``: ``min |q|² + min |r|² − 2 max q·r``. When it
        is above 1e-12 (the usual case, except the batch against itself) the blocks skip
        the coincidence masks. One host read per call, before the block loops.
        """
        if "may_coincide" not in self.shared:
            bound = self.query_sqnorm.min() + self.ref_sqnorm.min() - 2.0 * self.sim.max()
            self.shared["may_coincide"] = bool(bound <= SQDIST_EPS)

    def positive_slots(self) -> tuple[Tensor, Tensor]:
        """Each row's positive references as slots: ``(index, used)``, both (n, P).

        ``index[i, s]`` is a reference column; slots with ``used`` False are padding.
        Found by binary search in the label-sorted references, so they cost O(n · P)
        rather than a pass over the row. P, shared by all row blocks, is the largest
        number of references sharing one label (few in class-balanced batches): the one
        value a pairwise loss reads on the host (a tensor shape needs it), once per call.
        """
        if "slots" not in self._cache:
            if "ref_order" not in self.shared:
                order = torch.argsort(self.ref_labels, stable=True)
                ordered = self.ref_labels[order]
                runs = torch.searchsorted(ordered, ordered, right=True) - torch.searchsorted(
                    ordered, ordered
                )
                self.shared["ref_order"], self.shared["ref_sorted"] = order, ordered
                self.shared["slot_width"] = int(runs.max())
            order, ordered = self.shared["ref_order"], self.shared["ref_sorted"]
            labels = self.labels.to(ordered.dtype)
            start = torch.searchsorted(ordered, labels)
            count = torch.searchsorted(ordered, labels, right=True) - start
            offsets = torch.arange(self.shared["slot_width"], device=start.device)
            used = offsets[None, :] < count[:, None]
            index = order[(start[:, None] + offsets).clamp_max(len(order) - 1)]
            # The diagonal (self case) and miner masks remove some of those columns.
            used &= self.pos.gather(1, index)
            self._cache["slots"] = (index, used)
        return self._cache["slots"]

    def split(self, rows: int) -> list[PairBatch]:
        """Row blocks of at most ``rows`` rows, sharing the references.

        Blocks are views; query norms already computed are sliced along, and
        reference-side values are shared.
        """
        norms = self._cache.get("query_sqnorm")
        norm_parts = norms.split(rows) if norms is not None else None
        sims = self.sim.split(rows)
        labels = self.labels.split(rows)
        queries = self.query.split(rows)
        masks = [tuple(m.split(rows) for m in pair) for pair in self.masks]
        blocks = []
        for k, sim in enumerate(sims):
            blocks.append(
                replace(
                    self,
                    sim=sim,
                    labels=labels[k],
                    query=queries[k],
                    row_start=self.row_start + k * rows,
                    masks=tuple((pos[k], neg[k]) for pos, neg in masks),
                    _cache={} if norm_parts is None else {"query_sqnorm": norm_parts[k]},
                )
            )
        return blocks


def build_pairs(
    embeddings: Tensor,
    labels: Tensor,
    ref_emb: Tensor | None = None,
    ref_labels: Tensor | None = None,
    *,
    normalize: bool = True,
    masks: Sequence[tuple[Tensor, Tensor]] = (),
    differentiable_sim: bool = True,
) -> PairBatch:
    """Validate the call and build the :class:`PairBatch` for it (one matmul).

    Args:
        embeddings: (N_q, D) query embeddings.
        labels: (N_q,) integer labels; moved to the embeddings' device.
        ref_emb: (N_r, D) reference embeddings, or None for the batch against itself.
        ref_labels: (N_r,) labels of ``ref_emb``; required with it.
        normalize: L2-normalise both sides first (cosine similarity), else raw dot product.
        masks: (pos_mask, neg_mask) pairs of bool (N_q, N_r), each ANDed with the label masks.
        differentiable_sim: compute ``sim`` inside the autograd graph; False for losses
            that differentiate the matmul themselves (``query``/``ref`` keep their graph).
    """
    labels, ref_labels = check_inputs(embeddings, labels, ref_emb, ref_labels)
    self_ref = ref_emb is None or ref_labels is None
    query = F.normalize(embeddings, dim=1) if normalize else embeddings
    if ref_emb is None or ref_labels is None:
        ref, ref_labels = query, labels
    else:
        ref = F.normalize(ref_emb, dim=1) if normalize else ref_emb
    with torch.set_grad_enabled(differentiable_sim and torch.is_grad_enabled()):
        sim = query @ ref.T
    _check_masks(masks, sim.shape)
    masks = tuple((pos.to(sim.device), neg.to(sim.device)) for pos, neg in masks)
    return PairBatch(sim, labels, ref_labels, query, ref, normalize, self_ref, masks=masks)
