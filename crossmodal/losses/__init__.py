"""Deep-metric-learning losses, pairwise and proxy-based, usable across modalities.

Pairwise losses work on one similarity matrix and boolean masks
(:class:`PairwiseLoss`); proxy losses classify against learnable class weights
(:class:`ProxyLoss`). All share the call
``loss(embeddings, labels, ref_emb=None, ref_labels=None)``.
"""

from __future__ import annotations

from crossmodal.losses.am_softmax import AMSoftmaxLoss
from crossmodal.losses.arcface import ArcFaceLoss
from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.circle import CircleLoss
from crossmodal.losses.combine import WeightedSum, default_objective
from crossmodal.losses.contrastive import ContrastiveLoss
from crossmodal.losses.cosface import CosFaceLoss
from crossmodal.losses.info_nce import InfoNCELoss
from crossmodal.losses.l2_softmax import L2SoftmaxLoss
from crossmodal.losses.large_margin_softmax import LargeMarginSoftmaxLoss
from crossmodal.losses.lifted_structure import LiftedStructureLoss
from crossmodal.losses.multi_similarity import MultiSimilarityLoss
from crossmodal.losses.normface import NormFaceLoss
from crossmodal.losses.npair import NPairLoss
from crossmodal.losses.pairs import PairBatch, build_pairs, check_inputs
from crossmodal.losses.proxy_base import ProxyLoss
from crossmodal.losses.proxy_circle import ProxyCircleLoss
from crossmodal.losses.registry import create_loss, is_proxy_loss, list_losses, register_loss
from crossmodal.losses.sphereface import SphereFaceLoss
from crossmodal.losses.symmetric import SymmetricLoss
from crossmodal.losses.triplet_margin import TripletMarginLoss

__all__ = [
    "AMSoftmaxLoss",
    "ArcFaceLoss",
    "CircleLoss",
    "ContrastiveLoss",
    "CosFaceLoss",
    "InfoNCELoss",
    "L2SoftmaxLoss",
    "LargeMarginSoftmaxLoss",
    "LiftedStructureLoss",
    "MultiSimilarityLoss",
    "NPairLoss",
    "NormFaceLoss",
    "PairBatch",
    "PairwiseLoss",
    "ProxyCircleLoss",
    "ProxyLoss",
    "SphereFaceLoss",
    "SymmetricLoss",
    "TripletMarginLoss",
    "WeightedSum",
    "build_pairs",
    "check_inputs",
    "create_loss",
    "default_objective",
    "is_proxy_loss",
    "list_losses",
    "register_loss",
]
