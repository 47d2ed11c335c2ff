"""Shared plumbing of the pairwise losses: input checks, masks, reductions.

A pairwise loss subclasses :class:`PairwiseLoss` and writes only ``compute(pairs)``, the
math on one :class:`~crossmodal.losses.pairs.PairBatch` (similarity matrix + boolean
positive/negative masks). Nothing here materialises index tuples of pairs or triplets.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.pairs import PairBatch, build_pairs


def masked_logsumexp(x: Tensor, mask: Tensor, dim: int = 1, add_one: bool = False) -> Tensor:
    """``log Σ_{j: mask} exp(x_j)`` along ``dim`` (``log(1 + Σ …)`` when ``add_one``).

    Rows with no True entry give ``-inf`` (or 0 with ``add_one``) and a zero gradient,
    where ``torch.logsumexp`` on ``-inf`` fills would give a NaN gradient. Masked-out
    entries never reach ``exp``, so large values there cannot overflow.
    """
    neg_inf = torch.finfo(x.dtype).min
    shift = x.masked_fill(~mask, neg_inf).amax(dim=dim, keepdim=True).detach()
    if add_one:
        shift = shift.clamp_min(0.0)
    else:
        shift = shift.masked_fill(~mask.any(dim=dim, keepdim=True), 0.0)
    terms = (x - shift).masked_fill(~mask, float("-inf")).exp()
    total = terms.sum(dim=dim, keepdim=True)
    if add_one:
        total = total + torch.exp(-shift)
        return (total.log() + shift).squeeze(dim)
    empty = total == 0
    out = torch.where(empty, float("-inf"), total.masked_fill(empty, 1.0).log() + shift)
    return out.squeeze(dim)


def mean_over(values: Tensor, valid: Tensor, pairs: PairBatch) -> Tensor:
    """Mean of ``values`` where ``valid``; :meth:`PairBatch.zero` when nothing is valid.

    ``values`` at invalid positions are ignored (they may be anything finite or not).
    """
    count = valid.sum()
    if int(count) == 0:
        return pairs.zero()
    return torch.where(valid, values, 0.0).sum() / count


class PairwiseLoss(nn.Module):
    """Base of the losses computed from one similarity matrix and label masks.

    Call: ``loss(embeddings, labels, ref_emb=None, ref_labels=None, *, miner_masks=None)``
    → scalar tensor.

    * ``embeddings`` (N_q, D) are the queries (anchors), ``labels`` (N_q,) integer ids.
    * ``ref_emb`` (N_r, D) / ``ref_labels`` (N_r,): the reference set (e.g. the other
      modality). Pair (i, j) is positive when ``labels[i] == ref_labels[j]``, negative
      otherwise. Omitted: the batch against itself, the diagonal excluded from both.
    * ``miner_masks``: (pos_mask, neg_mask) bool (N_q, N_r), e.g. from a
      :mod:`crossmodal.miners` miner, ANDed with the label masks. A ``miner`` given at
      construction is run on every call and ANDed as well.

    Embeddings are L2-normalised first unless ``normalize=False`` (similarity = cosine).
    Each subclass documents its reduction; when no anchor/pair has a valid term the loss
    is ``0`` still connected to the graph (``sim.sum() * 0``), so ``backward`` and DDP work.
    Bad input raises ``ValueError`` naming the problem (see
    :func:`crossmodal.losses.pairs.check_inputs`).
    """

    def __init__(self, normalize: bool = True, miner: nn.Module | None = None) -> None:
        super().__init__()
        self.normalize = normalize
        self.miner = miner

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        miner_masks: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        masks = [] if miner_masks is None else [miner_masks]
        if self.miner is not None:
            masks.append(self.miner(embeddings, labels, ref_emb, ref_labels))
        pairs = build_pairs(
            embeddings, labels, ref_emb, ref_labels, normalize=self.normalize, masks=masks
        )
        return self.compute(pairs)

    def compute(self, pairs: PairBatch) -> Tensor:
        """The loss value from ``pairs`` (subclasses implement the paper's math here)."""
        raise NotImplementedError
