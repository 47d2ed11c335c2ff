"""All-gather with gradients, so a loss on one rank sees the negatives of every rank.

Typical use inside a DDP training step (each rank holds its local batch)::

    video_all = all_gather_with_grad(video_emb)
    music_all = all_gather_with_grad(music_emb)
    labels_all = all_gather_no_grad(labels)
    loss = objective(video_all, labels_all, music_all, labels_all)
    loss.backward()

Every rank then computes the same loss ``L`` on the concatenated batch. The backward of
:func:`all_gather_with_grad` sums the gradients all ranks computed for each rank's rows,
so a rank's local embeddings receive ``world_size · ∂L/∂x_local``; DDP then *averages*
parameter gradients over ranks, and the effective parameter gradient is exactly
``∂L/∂θ`` of the single-process loss on the concatenated batch. The same holds when each
rank computes only its local queries against the gathered references
(``loss(video_emb, labels, music_all, labels_all)``) if the mean of the ranks' losses is
the full loss — true for losses averaged over anchors when every rank has the same number
of valid anchors (e.g. P×K batches). Outside ``torch.distributed`` (or with one process)
every function here is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _gather_sizes(tensor: Tensor, group: dist.ProcessGroup | None) -> list[int]:
    size = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, size, group=group)
    return [int(s) for s in sizes]


def _gather_padded(tensor: Tensor, sizes: list[int], group: dist.ProcessGroup | None) -> Tensor:
    """All-gather rows of possibly different counts (padded to the largest, then cut)."""
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous(), group=group)
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])


class _AllGatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: Tensor, group: dist.ProcessGroup | None) -> Tensor:  # type: ignore[override]
        sizes = _gather_sizes(tensor, group)
        ctx.group = group
        ctx.sizes = sizes
        ctx.rank = dist.get_rank(group)
        return _gather_padded(tensor, sizes, group)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        # Every rank holds a gradient for every row; each rank's rows get the sum.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def all_gather_with_grad(tensor: Tensor, group: dist.ProcessGroup | None = None) -> Tensor:
    """Concatenate ``tensor`` (N_r, ...) of every rank along dim 0, in rank order.

    Ranks may hold different N_r. Differentiable: the backward sums, over ranks, the
    gradients with respect to this rank's rows (see the module docstring for how this
    composes with DDP's gradient averaging). Identity without a process group.
    """
    if not is_distributed():
        return tensor
    return _AllGatherWithGrad.apply(tensor, group)


def all_gather_no_grad(tensor: Tensor, group: dist.ProcessGroup | None = None) -> Tensor:
    """Concatenate ``tensor`` of every rank along dim 0 (no gradient; e.g. labels)."""
    if not is_distributed():
        return tensor
    with torch.no_grad():
        return _gather_padded(tensor, _gather_sizes(tensor, group), group)
