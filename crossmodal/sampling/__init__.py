"""Sampling: what each mini-batch shows the loss.

Three parts of one stage of the metric-learning pipeline: the P×K class-balanced batch
sampler (:mod:`.pk_sampler`), the miners that choose informative pairs inside a batch
(:mod:`.miners`), and the cross-batch memory that adds past batches as references
(:mod:`.memory`). Exports are lazy so that importing one part does not import the others
(the memory wraps a loss; the losses accept miners).
"""

from __future__ import annotations

from crossmodal.lazy import lazy_exports

_EXPORTS = {
    "PKSampler": "crossmodal.sampling.pk_sampler",
    "CrossBatchMemory": "crossmodal.sampling.memory",
    "Miner": "crossmodal.sampling.miners",
    "BatchHardMiner": "crossmodal.sampling.miners",
    "DistanceWeightedMiner": "crossmodal.sampling.miners",
    "MultiSimilarityMiner": "crossmodal.sampling.miners",
    "SemiHardMiner": "crossmodal.sampling.miners",
    "create_miner": "crossmodal.sampling.miners",
    "list_miners": "crossmodal.sampling.miners",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
