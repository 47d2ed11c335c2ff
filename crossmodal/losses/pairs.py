"""The one similarity matrix and the label masks every pairwise loss and miner works on.

Queries are the rows (``embeddings``, N_q×D), references the columns (``ref_emb``,
N_r×D). Without ``ref_emb`` the batch is compared with itself and the diagonal (an
item paired with itself) is neither a positive nor a negative. That choice is made from
``ref_emb is None`` alone, never from tensor identity: passing ``ref_emb=emb,
ref_labels=labels`` explicitly is a cross-modal call whose diagonal pairs are positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

# Below this squared distance a pair counts as coincident: its distance is 0 and carries
# no gradient (sqrt has an infinite slope at 0, which would turn into NaN).
_SQDIST_EPS = 1e-12


def _check_embeddings(name: str, emb: Tensor) -> None:
    if not isinstance(emb, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(emb).__name__}")
    if emb.ndim != 2:
        raise ValueError(f"{name} must be 2-D (batch, dim), got shape {tuple(emb.shape)}")
    if not emb.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {emb.dtype}")
    if emb.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    if not bool(torch.isfinite(emb.detach()).all()):
        bad = int((~torch.isfinite(emb.detach())).any(dim=1).sum())
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

    Raises ``ValueError`` naming the problem: embeddings not 2-D floating point, NaN/inf
    values, labels not 1-D integers, batch sizes that differ, ``ref_emb`` without
    ``ref_labels`` (or the reverse), different embedding widths, dtypes or devices.
    """
    _check_embeddings("embeddings", embeddings)
    _check_labels("labels", labels, embeddings.shape[0], "embeddings")
    labels = labels.to(embeddings.device)
    if (ref_emb is None) != (ref_labels is None):
        raise ValueError("ref_emb and ref_labels must be given together (or both omitted)")
    if ref_emb is None:
        return labels, None
    _check_embeddings("ref_emb", ref_emb)
    _check_labels("ref_labels", ref_labels, ref_emb.shape[0], "ref_emb")  # type: ignore[arg-type]
    if ref_emb.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"embeddings have dim {embeddings.shape[1]} but ref_emb has dim {ref_emb.shape[1]}"
        )
    if ref_emb.dtype != embeddings.dtype:
        raise ValueError(f"embeddings are {embeddings.dtype} but ref_emb is {ref_emb.dtype}")
    if ref_emb.device != embeddings.device:
        raise ValueError(f"embeddings are on {embeddings.device} but ref_emb on {ref_emb.device}")
    return labels, ref_labels.to(embeddings.device)  # type: ignore[union-attr]


@dataclass
class PairBatch:
    """Similarity matrix, label masks and norms for one query × reference comparison.

    Attributes:
        sim: (N_q, N_r) similarities ``q_i · r_j`` (cosine when ``normalized``).
        pos: (N_q, N_r) bool, True where ``labels[i] == ref_labels[j]`` (diagonal excluded
            in the batch-against-itself case), ANDed with any miner mask.
        neg: (N_q, N_r) bool, True where the labels differ, ANDed with any miner mask.
        query_sqnorm: (N_q,) squared norms of the compared query vectors.
        ref_sqnorm: (N_r,) squared norms of the compared reference vectors.
        normalized: whether the vectors were L2-normalised before the matmul.
        self_ref: True when the batch was compared with itself (``ref_emb`` omitted).
        dim: the embedding width D.
    """

    sim: Tensor
    pos: Tensor
    neg: Tensor
    query_sqnorm: Tensor
    ref_sqnorm: Tensor
    normalized: bool
    self_ref: bool
    dim: int
    _dist: dict[bool, Tensor] = field(default_factory=dict, repr=False)

    def distance(self, squared: bool = False) -> Tensor:
        """Euclidean distances from the same matmul: ``d² = |q|² + |r|² − 2 q·r``.

        For unit vectors this is ``sqrt(2 − 2 cos)``. Coincident pairs (d² < 1e-12) get
        distance exactly 0 and zero gradient, so duplicates never produce NaN.
        """
        if squared not in self._dist:
            sq = (self.query_sqnorm[:, None] + self.ref_sqnorm[None, :] - 2.0 * self.sim).clamp_min(
                0.0
            )
            if squared:
                self._dist[True] = sq
            else:
                far = sq > _SQDIST_EPS
                self._dist[False] = torch.where(far, sq.clamp_min(_SQDIST_EPS).sqrt(), 0.0)
        return self._dist[squared]

    def zero(self) -> Tensor:
        """A 0 connected to the inputs' graph (backward and DDP see every parameter)."""
        return self.sim.sum() * 0.0


def _combine_masks(
    pos: Tensor, neg: Tensor, masks: Sequence[tuple[Tensor, Tensor]]
) -> tuple[Tensor, Tensor]:
    for pair in masks:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError("miner masks must be a (pos_mask, neg_mask) pair of bool tensors")
        checked = []
        for name, base, mask in (("pos_mask", pos, pair[0]), ("neg_mask", neg, pair[1])):
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
                raise ValueError(f"miner {name} must be a bool tensor")
            if mask.shape != base.shape:
                raise ValueError(
                    f"miner {name} has shape {tuple(mask.shape)} but the similarity matrix "
                    f"is {tuple(base.shape)} (queries × references)"
                )
            checked.append(base & mask.to(base.device))
        pos, neg = checked
    return pos, neg


def build_pairs(
    embeddings: Tensor,
    labels: Tensor,
    ref_emb: Tensor | None = None,
    ref_labels: Tensor | None = None,
    *,
    normalize: bool = True,
    masks: Sequence[tuple[Tensor, Tensor]] = (),
) -> PairBatch:
    """Validate the call and build the :class:`PairBatch` for it (one matmul).

    Args:
        embeddings: (N_q, D) query embeddings.
        labels: (N_q,) integer labels; moved to the embeddings' device.
        ref_emb: (N_r, D) reference embeddings, or None for the batch against itself.
        ref_labels: (N_r,) labels of ``ref_emb``; required with it.
        normalize: L2-normalise both sides first (cosine similarity), else raw dot product.
        masks: (pos_mask, neg_mask) pairs of bool (N_q, N_r), each ANDed with the label masks.
    """
    labels, ref_labels = check_inputs(embeddings, labels, ref_emb, ref_labels)
    self_ref = ref_emb is None
    query = F.normalize(embeddings, dim=1) if normalize else embeddings
    if self_ref:
        ref, ref_labels = query, labels
    else:
        ref = F.normalize(ref_emb, dim=1) if normalize else ref_emb  # type: ignore[arg-type]
    sim = query @ ref.T
    same = labels[:, None] == ref_labels[None, :]  # type: ignore[index]
    neg = ~same
    pos = same
    if self_ref:
        pos = same.clone()
        pos.fill_diagonal_(False)
    pos, neg = _combine_masks(pos, neg, masks)
    query_sqnorm = query.pow(2).sum(1)
    ref_sqnorm = query_sqnorm if self_ref else ref.pow(2).sum(1)
    return PairBatch(
        sim, pos, neg, query_sqnorm, ref_sqnorm, normalize, self_ref, embeddings.shape[1]
    )
