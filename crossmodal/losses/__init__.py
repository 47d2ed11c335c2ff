"""Deep-metric-learning losses, pairwise and proxy-based, usable across modalities.

Every loss and wrapper is called ``loss(embeddings, labels, ref_emb=None,
ref_labels=None, *, miner_masks=None)``. Pairwise losses work on one similarity matrix
and boolean masks (:class:`PairwiseLoss`; write a new one with
:class:`AutogradPairwiseLoss`); proxy losses classify against learnable class weights
(:class:`ProxyLoss`). :func:`create_loss` builds one by name with its miner,
cross-batch memory and both directions. Exports are lazy: importing one loss does not
import the others.
"""

from __future__ import annotations

from crossmodal.lazy import lazy_exports

_EXPORTS = {
    "AMSoftmaxLoss": "crossmodal.losses.am_softmax",
    "ArcFaceLoss": "crossmodal.losses.arcface",
    "AutogradPairwiseLoss": "crossmodal.losses.base",
    "BinomialDevianceLoss": "crossmodal.losses.binomial_deviance",
    "BlockwiseLoss": "crossmodal.losses.blockwise",
    "CircleLoss": "crossmodal.losses.circle",
    "ContrastiveLoss": "crossmodal.losses.contrastive",
    "CosFaceLoss": "crossmodal.losses.cosface",
    "DEFAULT_PRESET": "crossmodal.losses.combine",
    "HardNegativeNCELoss": "crossmodal.losses.hard_negative_nce",
    "InfoNCELoss": "crossmodal.losses.info_nce",
    "L2SoftmaxLoss": "crossmodal.losses.l2_softmax",
    "LargeMarginSoftmaxLoss": "crossmodal.losses.large_margin_softmax",
    "LiftedStructureLoss": "crossmodal.losses.lifted_structure",
    "MultiSimilarityLoss": "crossmodal.losses.multi_similarity",
    "NPairLoss": "crossmodal.losses.npair",
    "NormFaceLoss": "crossmodal.losses.normface",
    "PairBatch": "crossmodal.losses.pairs",
    "PairwiseLoss": "crossmodal.losses.base",
    "ProxyAnchorLoss": "crossmodal.losses.proxy_anchor",
    "ProxyCircleLoss": "crossmodal.losses.proxy_circle",
    "ProxyLoss": "crossmodal.losses.proxy_base",
    "SigLIPLoss": "crossmodal.losses.siglip",
    "SmoothAPLoss": "crossmodal.losses.smooth_ap",
    "SphereFaceLoss": "crossmodal.losses.sphereface",
    "SupConLoss": "crossmodal.losses.supcon",
    "SymmetricLoss": "crossmodal.losses.symmetric",
    "TripletMarginLoss": "crossmodal.losses.triplet_margin",
    "WeightedSum": "crossmodal.losses.combine",
    "build_pairs": "crossmodal.losses.pairs",
    "check_inputs": "crossmodal.losses.pairs",
    "create_loss": "crossmodal.losses.registry",
    "default_objective": "crossmodal.losses.combine",
    "learned_logit_scale": "crossmodal.losses.info_nce",
    "list_losses": "crossmodal.losses.registry",
    "loss_kind": "crossmodal.losses.registry",
    "register_loss": "crossmodal.losses.registry",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
