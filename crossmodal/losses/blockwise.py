"""Row-block evaluation of a pairwise loss with its analytic gradient.

The similarity matrix comes from one autograd matmul; everything after it runs in a
custom autograd function that walks the matrix in blocks of rows. Each loss supplies its
forward math and the closed-form gradient of its value with respect to the similarities
(and to the squared norms, for losses on Euclidean distances, and to its own
parameters). Temporaries are block-sized, so they stay in cache and are reused by the
allocator, nothing of size N_q×N_r is kept for the backward pass but the similarity
matrix itself, and the gradient is written once into one N_q×N_r buffer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from crossmodal.losses.pairs import SQDIST_EPS, PairBatch

if TYPE_CHECKING:
    from crossmodal.losses.base import PairwiseLoss


class BlockwiseLoss(torch.autograd.Function):
    """``loss.block_forward`` / ``loss.block_backward`` as one autograd node.

    Inputs after ``loss`` and ``pairs`` are the tensors the loss differentiates
    (``loss.grad_inputs(pairs)``); ``block_backward`` returns one gradient per input.
    """

    @staticmethod
    def forward(ctx: Any, loss: PairwiseLoss, pairs: PairBatch, *inputs: Tensor) -> Tensor:  # type: ignore[override]
        value, state = loss.block_forward(pairs)
        ctx.loss, ctx.pairs, ctx.state = loss, pairs, state
        return value

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        grads = ctx.loss.block_backward(ctx.pairs, ctx.state, grad)
        return (None, None, *grads)


def lse_rows(x: Tensor, mask: Tensor) -> Tensor:
    """Row-wise ``log Σ_{mask} exp(x)``, ``-inf`` for rows without a True entry (no grad)."""
    out = torch.logsumexp(x.masked_fill(~mask, float("-inf")), dim=1)
    return out


def finite_or_zero(x: Tensor) -> Tensor:
    """``x`` with ``±inf`` replaced by 0 (row statistics of empty rows, before ``exp``)."""
    return torch.where(torch.isfinite(x), x, 0.0)


def distance_backward(
    pairs: PairBatch, grad_dist: Tensor, squared: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Chain rule through ``d² = |q|² + |r|² − 2 s`` (and ``d = sqrt(d²)``) for one block.

    Returns the gradients for the block's similarities (n, N_r), query squared norms (n,)
    and reference squared norms (N_r,), following :meth:`PairBatch.distance` exactly:
    no gradient where ``d²`` was clamped at 0, or, for ``d``, where ``d² ≤ 1e-12``.
    """
    sq = pairs.query_sqnorm[:, None] + pairs.ref_sqnorm[None, :] - 2.0 * pairs.sim
    if squared:
        grad_sq = torch.where(sq > 0, grad_dist, 0.0)
    else:
        far = sq > SQDIST_EPS
        grad_sq = torch.where(far, grad_dist / (2.0 * sq.clamp_min(SQDIST_EPS).sqrt()), 0.0)
    return -2.0 * grad_sq, grad_sq.sum(1), grad_sq.sum(0)


def block_rows(pairs: PairBatch, chunk_elements: int) -> int:
    """Rows per block so that a block holds about ``chunk_elements`` entries."""
    return max(1, chunk_elements // max(1, pairs.sim.shape[1]))
