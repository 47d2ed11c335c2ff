"""Build losses by name: ``create_loss("circle", m=0.25)``, ``list_losses()``.

Every entry carries ``kind`` metadata: ``"pairwise"`` (computed from a similarity matrix
between the call's embeddings; takes a miner and a cross-batch memory) or ``"proxy"``
(classifies against learnable class proxies; needs ``num_classes`` and
``embedding_dim``). :func:`create_loss` builds the whole term: the loss, its miner, a
cross-batch memory and both retrieval directions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from crossmodal.losses.am_softmax import AMSoftmaxLoss
from crossmodal.losses.arcface import ArcFaceLoss
from crossmodal.losses.binomial_deviance import BinomialDevianceLoss
from crossmodal.losses.circle import CircleLoss
from crossmodal.losses.contrastive import ContrastiveLoss
from crossmodal.losses.cosface import CosFaceLoss
from crossmodal.losses.hard_negative_nce import HardNegativeNCELoss
from crossmodal.losses.info_nce import InfoNCELoss
from crossmodal.losses.l2_softmax import L2SoftmaxLoss
from crossmodal.losses.large_margin_softmax import LargeMarginSoftmaxLoss
from crossmodal.losses.lifted_structure import LiftedStructureLoss
from crossmodal.losses.multi_similarity import MultiSimilarityLoss
from crossmodal.losses.normface import NormFaceLoss
from crossmodal.losses.npair import NPairLoss
from crossmodal.losses.proxy_anchor import ProxyAnchorLoss
from crossmodal.losses.proxy_circle import ProxyCircleLoss
from crossmodal.losses.siglip import SigLIPLoss
from crossmodal.losses.smooth_ap import SmoothAPLoss
from crossmodal.losses.sphereface import SphereFaceLoss
from crossmodal.losses.supcon import SupConLoss
from crossmodal.losses.symmetric import SymmetricLoss
from crossmodal.losses.triplet_margin import TripletMarginLoss
from crossmodal.registry import BadArgumentsError, Registry
from crossmodal.sampling.memory import CrossBatchMemory
from crossmodal.sampling.miners import create_miner

KINDS = ("pairwise", "proxy")

LOSSES: Registry[nn.Module] = Registry("loss")
for _name, _factory in {
    "contrastive": ContrastiveLoss,
    "triplet_margin": TripletMarginLoss,
    "lifted_structure": LiftedStructureLoss,
    "npair": NPairLoss,
    "multi_similarity": MultiSimilarityLoss,
    "circle": CircleLoss,
    "info_nce": InfoNCELoss,
    "binomial_deviance": BinomialDevianceLoss,
    "siglip": SigLIPLoss,
    "supcon": SupConLoss,
    "hard_negative_nce": HardNegativeNCELoss,
    "smooth_ap": SmoothAPLoss,
}.items():
    LOSSES.register(_name, _factory, kind="pairwise")
for _name, _factory in {
    "l2_softmax": L2SoftmaxLoss,
    "large_margin_softmax": LargeMarginSoftmaxLoss,
    "sphereface": SphereFaceLoss,
    "normface": NormFaceLoss,
    "am_softmax": AMSoftmaxLoss,
    "cosface": CosFaceLoss,
    "arcface": ArcFaceLoss,
    "proxy_circle": ProxyCircleLoss,
    "proxy_anchor": ProxyAnchorLoss,
}.items():
    LOSSES.register(_name, _factory, kind="proxy")


def register_loss(name: str, factory: Callable[..., nn.Module], *, kind: str) -> None:
    """Make ``create_loss(name, ...)`` call ``factory(...)``; names must be new.

    ``kind`` is ``"pairwise"`` (the factory takes ``miner=``) or ``"proxy"`` (it takes
    ``num_classes`` and ``embedding_dim``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    LOSSES.register(name, factory, kind=kind)


def list_losses(kind: str | None = None) -> list[str]:
    """Registered loss names, sorted; only those of ``kind`` when given."""
    return LOSSES.names() if kind is None else LOSSES.names(kind=kind)


def loss_kind(name: str) -> str:
    """``"pairwise"`` or ``"proxy"`` (unknown names raise
    :class:`~crossmodal.registry.UnknownNameError`)."""
    return LOSSES.entry(name).meta["kind"]


def create_loss(
    name: str,
    *,
    symmetric: bool = False,
    miner: str | Mapping[str, Any] | nn.Module | None = None,
    memory_size: int = 0,
    memory_warmup: int = 0,
    embedding_dim: int | None = None,
    **params: Any,
) -> nn.Module:
    """Build the loss registered as ``name`` with ``params``, and what wraps it.

    Args:
        symmetric: both retrieval directions, averaged (:class:`SymmetricLoss`).
        miner: for a pairwise loss, a miner module, a miner name, or ``{"name": ...,
            **miner_params}`` (see :func:`crossmodal.sampling.miners.create_miner`).
        memory_size: > 0 gives a pairwise loss a
            :class:`~crossmodal.sampling.memory.CrossBatchMemory` of that many past
            references (one per direction when symmetric, both around the same loss, so
            parameters such as InfoNCE's temperature have one owner), used after
            ``memory_warmup`` training calls. Needs ``embedding_dim``.
        embedding_dim: D of the embeddings, for proxy losses and the memory.

    Every result is called ``loss(embeddings, labels, ref_emb=None, ref_labels=None, *,
    miner_masks=None)``. An unknown name raises
    :class:`~crossmodal.registry.UnknownNameError` with close matches; arguments the
    loss does not take, or options that do not fit its kind,
    :class:`~crossmodal.registry.BadArgumentsError`.
    """
    kind = loss_kind(name)
    if kind == "proxy":
        if miner is not None or memory_size:
            what = "miner" if miner is not None else "cross-batch memory"
            raise BadArgumentsError(
                f"loss {name!r} is a proxy loss: it takes no {what} (it has no pairs to mine "
                "or reference rows to add); use a pairwise loss "
                f"({', '.join(list_losses('pairwise'))})"
            )
        if embedding_dim is not None:
            params["embedding_dim"] = embedding_dim
    if miner is not None:
        params["miner"] = _miner(miner)
    loss = LOSSES.create(name, **params)
    if not memory_size:
        return SymmetricLoss(loss) if symmetric else loss
    if embedding_dim is None:
        raise BadArgumentsError(f"loss {name!r}: memory_size needs embedding_dim")
    memories = [
        CrossBatchMemory(loss, embedding_dim, memory_size, warmup_iters=memory_warmup)
        for _ in range(2 if symmetric else 1)
    ]
    return SymmetricLoss(*memories) if symmetric else memories[0]


def _miner(miner: str | Mapping[str, Any] | nn.Module) -> nn.Module:
    if isinstance(miner, nn.Module):
        return miner
    if isinstance(miner, str):
        return create_miner(miner)
    options = dict(miner)
    if "name" not in options:
        raise BadArgumentsError(f"a miner given as a mapping needs a 'name', got {options}")
    return create_miner(options.pop("name"), **options)
