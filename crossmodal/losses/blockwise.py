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
    returns the value and one unit gradient per input (``d value / d input``). First
    derivatives only: ``backward(create_graph=True)`` raises.
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
        if torch.is_grad_enabled():
            # create_graph=True: the stored gradients are constants, a graph through them
            # would give silently wrong higher derivatives.
            raise RuntimeError(
                "crossmodal pairwise losses have first derivatives only; "
                "backward with create_graph=True is not supported"
            )
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


def masked_exp(x: Tensor, mask: Tensor, count: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Row-stable exponentials of ``x`` where the 0/1 float ``mask`` is 1.

    ``count`` (n, 1) is the number of ones per row. Returns ``(e, total, shift)``:
    ``e = exp(x − shift)`` (0 outside the mask), ``total = Σ_j e_ij`` (n, 1) and
    ``shift`` (n, 1) the row maximum over the mask (0 for rows without a one, whose
    ``total`` is 0). ``log(total) + shift`` is the masked log-sum-exp and ``e / total``
    the masked softmax.
    """
    if bool((count == x.shape[1]).all()):
        shift = x.amax(dim=1, keepdim=True)
        e = (x - shift).exp_()
        return e, e.sum(dim=1, keepdim=True), shift
    # Masked-out entries sit far below any real value, so their exp underflows to 0.
    masked = (mask - 1.0).mul_(torch.finfo(x.dtype).max / 4).add_(x)
    shift = torch.where(count > 0, masked.amax(dim=1, keepdim=True), 0.0)
    e = masked.sub_(shift).exp_()
    return e, e.sum(dim=1, keepdim=True), shift


def log_total(total: Tensor, shift: Tensor) -> Tensor:
    """``log(total) + shift`` (``-inf`` where ``total`` is 0)."""
    return total.log() + shift


def safe_div(e: Tensor, total: Tensor) -> Tensor:
    """``e / total`` in place, rows with ``total = 0`` (all-zero ``e``) left at 0."""
    return e.div_(total.clamp_min(torch.finfo(e.dtype).tiny))


def slot_logsumexp(values: Tensor, used: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise log-sum-exp over the used slots, and the softmax over them (0 elsewhere).

    ``values``/``used`` are (n, P); rows without a used slot give ``-inf`` and zeros.
    """
    masked = values.masked_fill(~used, float("-inf"))
    lse = torch.logsumexp(masked, dim=1, keepdim=True)
    softmax = (masked - torch.where(torch.isfinite(lse), lse, 0.0)).exp_()
    return lse, softmax


def distance_chain(
    pairs: PairBatch, grad_dist: Tensor, squared: bool, out: Tensor
) -> tuple[Tensor, Tensor]:
    """Chain rule through ``d² = |q|² + |r|² − 2 s`` (and ``d = sqrt(d²)``) for one block.

    ``grad_dist`` (n, N_r) is ``d value / d distance`` (modified in place); the
    similarity gradient is written to ``out`` and the gradients for the block's query
    squared norms (n,) and for the reference squared norms (N_r,) are returned. Follows
    :meth:`PairBatch.distance`: no gradient where ``d²`` was clamped at 0, or, for ``d``,
    between coincident points.
    """
    if squared:
        grad_sq = grad_dist.mul_(pairs.distance(squared=True).sign())
    else:
        apart = pairs.apart()
        grad_sq = grad_dist if apart is None else grad_dist.mul_(apart)
        grad_sq = grad_sq.div_(pairs.distance_floor()).mul_(0.5)
    torch.mul(grad_sq, -2.0, out=out)
    return grad_sq.sum(1), grad_sq.sum(0)


def slot_distance_chain(
    pairs: PairBatch, index: Tensor, grad_dist: Tensor, squared: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`distance_chain` for gradients given at slots (``index``, (n, P)).

    Returns (similarity gradient at the slots, query-norm gradient (n,), reference-norm
    gradient (N_r,)); scatter the first into the similarity gradient with ``index``.
    """
    if squared:
        grad_sq = grad_dist * pairs.distance(squared=True).gather(1, index).sign()
    else:
        apart = pairs.apart()
        grad_sq = grad_dist if apart is None else grad_dist * apart.gather(1, index)
        grad_sq = grad_sq / pairs.distance_floor().gather(1, index) * 0.5
    ref = grad_sq.new_zeros(pairs.sim.shape[1]).scatter_add_(0, index.flatten(), grad_sq.flatten())
    return grad_sq * -2.0, grad_sq.sum(1), ref


def block_rows(pairs: PairBatch, chunk_elements: int) -> int:
    """Rows per block so that a block holds about ``chunk_elements`` entries."""
    return max(1, chunk_elements // max(1, pairs.sim.shape[1]))
