"""The pairwise losses' contract and plumbing, and the autograd path for writing one.

Every pairwise loss is computed from one :class:`~crossmodal.losses.pairs.PairBatch`
(similarity matrix + boolean positive/negative masks); nothing here materialises index
tuples of pairs or triplets. Two ways to write the math:

* :class:`AutogradPairwiseLoss`: a differentiable function of the similarity matrix and
  the masks; autograd derives the gradient. The way to add a loss (docs/losses.md).
* :class:`~crossmodal.losses.blockwise.BlockwiseLoss`: the value and its closed-form
  gradient over row blocks, in one autograd node. Used by the built-in losses, where it
  pays in time and memory at large batches.
"""

from __future__ import annotations

from torch import Tensor, nn

from crossmodal.losses.pairs import PairBatch, build_pairs


class PairwiseLoss(nn.Module):
    """Base of the losses computed from one similarity matrix and label masks.

    Call: ``loss(embeddings, labels, ref_emb=None, ref_labels=None, *, miner_masks=None)``
    → scalar tensor.

    * ``embeddings`` (N_q, D) are the queries (anchors), ``labels`` (N_q,) integer ids.
    * ``ref_emb`` (N_r, D) / ``ref_labels`` (N_r,): the reference set (e.g. the other
      modality). Pair (i, j) is positive when ``labels[i] == ref_labels[j]``, negative
      otherwise. Omitted: the batch against itself, the diagonal excluded from both.
    * ``miner_masks``: (pos_mask, neg_mask) bool (N_q, N_r), e.g. from a
      :mod:`crossmodal.sampling.miners` miner, ANDed with the label masks. A ``miner`` given
      at construction is run on every call and ANDed as well.

    Embeddings are L2-normalised first unless ``normalize=False`` (similarity = cosine).
    Each subclass documents its reduction; when no anchor/pair has a valid term the loss
    is ``0`` still connected to the graph (its gradient is zero), so ``backward`` and DDP
    work. Bad input raises ``ValueError`` naming the problem (see
    :func:`crossmodal.losses.pairs.check_inputs`). Subclasses implement
    :meth:`compute`; :class:`AutogradPairwiseLoss` and
    :class:`~crossmodal.losses.blockwise.BlockwiseLoss` are the two ways to.
    """

    #: Whether :meth:`compute` needs ``pairs.sim`` inside the autograd graph (the
    #: blockwise losses differentiate the matmul themselves).
    differentiable_sim: bool = True

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
            embeddings,
            labels,
            ref_emb,
            ref_labels,
            normalize=self.normalize,
            masks=masks,
            differentiable_sim=self.differentiable_sim,
        )
        return self.compute(pairs)

    def compute(self, pairs: PairBatch) -> Tensor:
        """The loss value from ``pairs``, differentiable with respect to the embeddings."""
        raise NotImplementedError


class AutogradPairwiseLoss(PairwiseLoss):
    """A pairwise loss written as a differentiable function of the similarities.

    Subclasses write :meth:`similarity_loss`; autograd does the gradient. The whole
    (N_q, N_r) matrix is one block, so autograd keeps its temporaries for the backward
    pass: fine for the batch sizes of experiments; a loss that must scale to large
    batches can later move to the closed-form
    :class:`~crossmodal.losses.blockwise.BlockwiseLoss` path, with this version as its
    reference.
    """

    def compute(self, pairs: PairBatch) -> Tensor:
        return self.similarity_loss(pairs.sim, pairs.pos, pairs.neg)

    def similarity_loss(self, sim: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """The loss from ``sim`` (N_q, N_r) (cosines unless ``normalize=False``) and the
        bool masks ``pos``/``neg`` (N_q, N_r); must be a differentiable function of
        ``sim`` without host reads of tensor values (no ``.item()``, ``if t.any()``)."""
        raise NotImplementedError
