"""Row-block evaluation of a pairwise loss together with its analytic gradient.

The similarity matrix comes from one autograd matmul; everything after it runs in one
custom autograd node. A loss's ``evaluate(pairs, with_grad)`` walks the matrix in blocks
of rows and returns the value and, when an input needs it, the closed-form gradient of
the value with respect to each differentiated input (similarities; squared norms for
losses on Euclidean distances; the loss's own parameters). The backward pass only scales
those by the incoming gradient. Temporaries are block-sized, so they stay in cache and
are reused by the allocator; the one N_q×N_r buffer kept between the passes is the
gradient itself. Writing the gradient in the forward pass shares its exponentials and
masks with the value and avoids recomputing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from crossmodal.losses.pairs import PairBatch

if TYPE_CHECKING:
    from crossmodal.losses.base import PairwiseLoss


class BlockwiseLoss(torch.autograd.Function):
    """``loss.evaluate`` as one autograd node.

    The inputs after ``loss`` and ``pairs`` are ``loss.grad_inputs(pairs)``; ``evaluate``
    returns the value and one unit gradient per input (``d value / d input``).
    """

    @staticmethod
    def forward(ctx: Any, loss: PairwiseLoss, pairs: PairBatch, *inputs: Tensor) -> Tensor:  # type: ignore[override]
        with_grad = any(ctx.needs_input_grad[2:])
        value, grads = loss.evaluate(pairs, with_grad)
        ctx.grads = grads
        ctx.applied = None  # the incoming gradient already multiplied into ctx.grads
        return value

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        grads = ctx.grads
        if ctx.applied is None and bool(grad != 0):
            # First backward: scale the stored gradients in place (no N×N copy).
            for g in grads:
                if g is not None:
                    g.mul_(grad)
            ctx.applied = grad
            return (None, None, *grads)
        # A second backward (retain_graph=True) or a zero incoming gradient: copies.
        scale = grad if ctx.applied is None else grad / ctx.applied
        return (None, None, *(None if g is None else g * scale for g in grads))


def masked_exp(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Row-stable exponentials of ``x`` where ``mask``.

    Returns ``(e, total, shift)``: ``e = exp(x − shift)`` (0 outside the mask),
    ``total = Σ_j e_ij`` and ``shift`` the row maximum over the mask (0 for rows without
    a True entry, whose ``total`` is 0). ``log(total) + shift`` is the masked
    log-sum-exp and ``e / total`` the masked softmax.
    """
    masked = x.masked_fill(~mask, float("-inf"))
    shift = masked.amax(dim=1, keepdim=True)
    shift.masked_fill_(~torch.isfinite(shift), 0.0)
    e = masked.sub_(shift).exp_()
    return e, e.sum(dim=1, keepdim=True), shift


def log_total(total: Tensor, shift: Tensor) -> Tensor:
    """``log(total) + shift`` as a row vector (``-inf`` where ``total`` is 0)."""
    return (total.log() + shift).squeeze(1)


def safe_div(e: Tensor, total: Tensor) -> Tensor:
    """``e / total`` in place, rows with ``total = 0`` (all-zero ``e``) left at 0."""
    return e.div_(total.clamp_min(torch.finfo(e.dtype).tiny))


def distance_chain(
    pairs: PairBatch, grad_dist: Tensor, squared: bool, out: Tensor
) -> tuple[Tensor, Tensor]:
    """Chain rule through ``d² = |q|² + |r|² − 2 s`` (and ``d = sqrt(d²)``) for one block.

    ``grad_dist`` (n, N_r) is ``d value / d distance``; the similarity gradient is written
    to ``out`` and the gradients for the block's query squared norms (n,) and for the
    reference squared norms (N_r,) are returned. Follows :meth:`PairBatch.distance`: no
    gradient where ``d²`` was clamped at 0, or, for ``d``, where ``d`` is 0.
    """
    if squared:
        grad_sq = torch.where(pairs.distance(squared=True) > 0, grad_dist, 0.0)
    else:
        dist = pairs.distance()
        grad_sq = (grad_dist / dist).masked_fill_(dist == 0, 0.0).mul_(0.5)
    torch.mul(grad_sq, -2.0, out=out)
    return grad_sq.sum(1), grad_sq.sum(0)


def block_rows(pairs: PairBatch, chunk_elements: int) -> int:
    """Rows per block so that a block holds about ``chunk_elements`` entries."""
    return max(1, chunk_elements // max(1, pairs.sim.shape[1]))
