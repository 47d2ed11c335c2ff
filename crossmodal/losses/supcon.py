"""Supervised contrastive loss (SupCon; Khosla et al., NeurIPS 2020), by its name."""

from __future__ import annotations

from torch import nn

from crossmodal.losses.info_nce import InfoNCELoss


class SupConLoss(InfoNCELoss):
    """SupCon's ``L_out``: :class:`InfoNCELoss` with the paper's fixed temperature.

    There is one implementation: our multi-positive InfoNCE already is SupCon. With
    ``A(i)`` every reference but the anchor itself and ``P(i)`` those sharing its label::

        ℓ_i = −1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p / τ) / Σ_{a∈A(i)} exp(z_i·z_a / τ) )

    the other positives staying in the denominator (the paper's ``L_out``, which it finds
    better than ``L_in``). The paper sums ``ℓ_i`` over the anchors; we average over the
    anchors with at least one positive, which only rescales the learning rate. Called
    without ``ref_emb`` it is the paper's setting (all views of the batch as anchors and
    references, the anchor itself excluded); with ``ref_emb`` the references are the
    other modality. Differences from :class:`InfoNCELoss` are only the defaults:
    ``temperature=0.1`` (the paper's), fixed (``learnable=False``).
    """

    def __init__(
        self,
        temperature: float = 0.1,
        learnable: bool = False,
        max_scale: float = 100.0,
        normalize: bool = True,
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__(
            temperature=temperature,
            learnable=learnable,
            max_scale=max_scale,
            normalize=normalize,
            miner=miner,
        )
