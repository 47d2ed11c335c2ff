"""Shared plumbing of the classification (proxy) losses: class weights, checks, softmax."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossmodal.losses.pairs import check_inputs


class ProxyLoss(nn.Module):
    """Base of the losses that classify embeddings against learnable class proxies.

    Owns ``weight``, an ``nn.Parameter`` of shape (num_classes, embedding_dim): one proxy
    per class, Xavier-normal initialised, or normal with std ``proxy_init_std`` where a
    subclass sets it (see :class:`~crossmodal.losses.LargeMarginSoftmaxLoss`). Subclasses write ``logits(embeddings, labels)`` →
    (N, num_classes); the loss is the softmax cross-entropy of those logits, averaged over
    the N embeddings (:meth:`objective`, which a loss that is not a softmax overrides
    instead, e.g. :class:`~crossmodal.losses.ProxyAnchorLoss`).

    Call: ``loss(embeddings, labels, ref_emb=None, ref_labels=None)`` — the signature of
    the pairwise losses, so the two families are interchangeable. The proxies are the
    reference set: ``ref_emb``/``ref_labels`` are checked like everywhere else but do not
    enter the value. Cross-modal use classifies each modality against the same proxies,
    which ties the two spaces together: ``SymmetricLoss(loss)(video, labels, music,
    labels)`` is the mean of ``loss(video, labels)`` and ``loss(music, labels)``.
    ``miner_masks`` are refused (there are no pairs to mine). Labels must lie in
    ``[0, num_classes)``.
    """

    #: Std of the proxies' normal init; None: Xavier-normal.
    proxy_init_std: float | None = None

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        if self.proxy_init_std is None:
            nn.init.xavier_normal_(self.weight)
        else:
            nn.init.normal_(self.weight, std=self.proxy_init_std)

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        miner_masks: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        if miner_masks is not None:
            raise ValueError(f"{type(self).__name__} is a proxy loss and takes no miner masks")
        labels, _ = check_inputs(embeddings, labels, ref_emb, ref_labels)
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings have dim {embeddings.shape[1]} but {type(self).__name__} was "
                f"built with embedding_dim={self.embedding_dim}"
            )
        if self.weight.device != embeddings.device:
            raise ValueError(
                f"{type(self).__name__}'s proxies are on {self.weight.device} but the "
                f"embeddings on {embeddings.device}; move the loss with .to(device)"
            )
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"label {bad} is outside [0, {self.num_classes}) for {type(self).__name__} "
                f"with num_classes={self.num_classes}"
            )
        return self.objective(embeddings, labels.long())

    def objective(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The loss of checked inputs: the cross-entropy of :meth:`logits` (a proxy loss
        that is not a softmax, such as Proxy-Anchor, overrides this instead)."""
        return F.cross_entropy(self.logits(embeddings, labels), labels)

    def proxies(self, dtype: torch.dtype) -> Tensor:
        """The class weights in ``dtype`` (differentiable cast)."""
        return self.weight.to(dtype)

    def cosine(self, embeddings: Tensor, scale: float = 1.0) -> Tensor:
        """(N, C) cosines between embeddings and proxies, times ``scale``."""
        weight = F.normalize(self.proxies(embeddings.dtype), dim=1)
        if scale != 1.0:
            weight = weight * scale
        return F.normalize(embeddings, dim=1) @ weight.T

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """(N, C) logits for the cross-entropy; ``labels`` select the margin'd entries."""
        raise NotImplementedError


def normface_scale(num_classes: int, probability: float = 0.99) -> float:
    """The least logit scale at which softmax over cosines gives the true class
    ``probability`` for embeddings that sit on their proxies, proxies spread evenly
    (NormFace, Wang et al. 2017, Proposition 2): ``(C − 1)/C · ln((C − 1) p / (1 − p))``.

    Any larger and the loss stops pulling before the classes are tight. At ``p = 0.99``:
    6.1 for 10 classes, 11.5 for 1,000 (it grows only logarithmically with C).
    """
    c = num_classes
    return (c - 1) / c * math.log((c - 1) * probability / (1.0 - probability))


def replace_target(logits: Tensor, labels: Tensor, target: Tensor) -> Tensor:
    """``logits`` with entry (i, labels[i]) replaced by ``target[i]`` (differentiably)."""
    return logits.scatter(1, labels[:, None], target[:, None])


def target_of(values: Tensor, labels: Tensor) -> Tensor:
    """``values[i, labels[i]]`` for each row."""
    return values.gather(1, labels[:, None]).squeeze(1)
