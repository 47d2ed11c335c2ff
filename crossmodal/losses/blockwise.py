"""Closed-form pairwise losses: row-block evaluation together with the analytic gradient.

A :class:`BlockwiseLoss` computes the similarity matrix outside autograd and runs its
``evaluate(pairs, with_grad)`` in one custom autograd node: it walks the matrix in blocks
of rows and returns the value and, when an input needs it, the closed-form gradient of
the value with respect to the similarities (and, for losses on Euclidean distances, the
squared norms; and the loss's own parameters). The backward pass chains those through
the matmul (``G @ ref``, ``Gᵀ @ query``) and scales the (N, D) results by the incoming
gradient, so the stored N_q×N_r gradient is never modified (a second backward with
``retain_graph=True`` reuses it). Temporaries are block-sized, so they stay in cache and
are reused by the allocator; the one N_q×N_r buffer kept between the passes is the
gradient itself. Writing the gradient in the forward pass shares its exponentials and
masks with the value and avoids recomputing them.

The block loops read no tensor value on the host (no ``.item()``, ``int(t)``,
``if t.any()``): on a GPU they queue kernels without waiting for them. Counts stay
tensors. The host reads are per call, not per block: the positive-slot width
(:meth:`PairBatch.positive_slots`) and, for distance losses, whether any pair can be
coincident (:meth:`PairBatch.find_coincident`, which spares the masks when none can).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.pairs import PairBatch


class BlockwiseLoss(PairwiseLoss):
    """A pairwise loss that returns its value and closed-form gradient by row blocks.

    Subclasses implement :meth:`evaluate`. See the module docstring for why.
    """

    #: Entries per row block (temporaries are block-sized).
    chunk_elements: int = 1 << 18
    #: Whether the loss works on Euclidean distances (its gradient then reaches the norms).
    uses_distance: bool = False
    differentiable_sim = False

    def compute(self, pairs: PairBatch) -> Tensor:
        return _Blockwise.apply(self, pairs, pairs.query, pairs.ref, *self.grad_params())

    def grad_params(self) -> tuple[Tensor, ...]:
        """The loss's own parameters the value is differentiated with respect to."""
        return ()

    def blocks(self, pairs: PairBatch) -> list[tuple[slice, PairBatch]]:
        """Row blocks of about ``chunk_elements`` entries (one block when small), each
        with the slice of ``pairs``' rows it covers (where its gradient rows go)."""
        if self.uses_distance:
            pairs.find_coincident()
        blocks, start = [], 0
        for block in pairs.split(block_rows(pairs, self.chunk_elements)):
            blocks.append((slice(start, start + block.sim.shape[0]), block))
            start += block.sim.shape[0]
        return blocks

    def evaluate(self, pairs: PairBatch, with_grad: bool) -> tuple[Tensor, tuple]:
        """The value and, if ``with_grad``, its gradients (else an empty tuple): ``d value /
        d sim``, then (``uses_distance`` only) ``d value / d |query|²`` (N_q,) and ``d value
        / d |ref|²`` (N_r,), then one per :meth:`grad_params`. Runs without autograd."""
        raise NotImplementedError

    def grad_buffers(self, pairs: PairBatch) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Zeroed gradient buffers for the similarities and (distance losses) the norms."""
        grad_sim = torch.zeros_like(pairs.sim)
        if not self.uses_distance:
            return grad_sim, None, None
        return grad_sim, torch.zeros_like(pairs.query_sqnorm), torch.zeros_like(pairs.ref_sqnorm)


class _Blockwise(torch.autograd.Function):
    """``loss.evaluate`` as one autograd node with inputs ``(query, ref, *params)``.

    First derivatives only: ``backward(create_graph=True)`` raises.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, loss: BlockwiseLoss, pairs: PairBatch, query: Tensor, ref: Tensor, *params: Tensor
    ) -> Tensor:
        with_grad = any(ctx.needs_input_grad[2:])
        value, grads = loss.evaluate(pairs, with_grad)
        ctx.grads = grads
        ctx.norms = 2 if loss.uses_distance else 0
        ctx.save_for_backward(query, ref)
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
        query, ref = ctx.saved_tensors
        grad_sim, *rest = ctx.grads
        norm_grads, param_grads = rest[: ctx.norms], rest[ctx.norms :]
        grad_query = grad_ref = None
        # sim = query @ refᵀ (and |x|² for distance losses): the chain rule of the matmul.
        if ctx.needs_input_grad[2]:
            grad_query = grad_sim @ ref
            if norm_grads:
                grad_query.addcmul_(query, norm_grads[0][:, None], value=2.0)
            grad_query.mul_(grad)
        if ctx.needs_input_grad[3]:
            grad_ref = grad_sim.T @ query
            if norm_grads:
                grad_ref.addcmul_(ref, norm_grads[1][:, None], value=2.0)
            grad_ref.mul_(grad)
        return (None, None, grad_query, grad_ref, *(g * grad for g in param_grads))


def masked_exp(
    x: Tensor, mask: Tensor | None, count: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Row-stable exponentials of ``x`` where the 0/1 float ``mask`` is 1.

    ``count`` (n, 1) is the number of ones per row; ``mask=None`` means every entry (the
    caller knows it from the structure of the call, without reading the mask). Returns
    ``(e, total, shift)``:
    ``e = exp(x − shift)`` (0 outside the mask), ``total = Σ_j e_ij`` (n, 1) and
    ``shift`` (n, 1) the row maximum over the mask (0 for rows without a one, whose
    ``total`` is 0). ``log(total) + shift`` is the masked log-sum-exp and ``e / total``
    the masked softmax.
    """
    if mask is None:
        shift = x.amax(dim=1, keepdim=True)
        e = (x - shift).exp_()
        return e, e.sum(dim=1, keepdim=True), shift
    # Masked-out entries sit far below any real value, so their exp underflows to 0.
    masked = (mask - 1.0).mul_(torch.finfo(x.dtype).max / 4).add_(x)
    shift = torch.where(count > 0, masked.amax(dim=1, keepdim=True), 0.0)  # type: ignore[operator]
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
    pairs: PairBatch, grad_dist: Tensor, squared: bool, out: Tensor, *, negated: bool = False
) -> tuple[Tensor, Tensor]:
    """Chain rule through ``d² = |q|² + |r|² − 2 s`` (and ``d = sqrt(d²)``) for one block.

    ``grad_dist`` (n, N_r) is ``d value / d distance`` (``−d value / d distance`` when
    ``negated``, which spares the caller a pass; modified in place); the similarity
    gradient is written to ``out`` and the gradients for the block's query squared norms
    (n,) and for the reference squared norms (N_r,) are returned. Follows
    :meth:`PairBatch.distance`: no gradient where ``d²`` was clamped at 0, or, for ``d``,
    between coincident points.
    """
    if squared:
        grad_sq = grad_dist.mul_(pairs.distance(squared=True).sign())
        if negated:
            grad_sq.neg_()
        torch.mul(grad_sq, -2.0, out=out)
        return grad_sq.sum(1), grad_sq.sum(0)
    coincident = pairs.coincident()
    if coincident is not None:
        grad_dist.masked_fill_(coincident, 0.0)
    # d value/d d² = (d value/d d) / 2d, and d value/d sim = −2 · d value/d d².
    torch.div(grad_dist, pairs.distance_floor(), out=out)
    if not negated:
        out.neg_()
    return out.sum(1).mul_(-0.5), out.sum(0).mul_(-0.5)


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
        coincident = pairs.coincident()
        if coincident is not None:
            grad_dist = grad_dist.masked_fill(coincident.gather(1, index), 0.0)
        grad_sq = grad_dist / pairs.distance_floor().gather(1, index) * 0.5
    ref = grad_sq.new_zeros(pairs.sim.shape[1]).scatter_add_(0, index.flatten(), grad_sq.flatten())
    return grad_sq * -2.0, grad_sq.sum(1), ref


def block_rows(pairs: PairBatch, chunk_elements: int) -> int:
    """Rows per block so that a block holds about ``chunk_elements`` entries."""
    return max(1, chunk_elements // max(1, pairs.sim.shape[1]))
