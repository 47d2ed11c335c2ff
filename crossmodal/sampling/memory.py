"""Cross-batch memory, XBM (Wang, Zhang, Huang & Scott, CVPR 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossmodal.losses.base import PairwiseLoss
from crossmodal.losses.pairs import check_inputs


class CrossBatchMemory(nn.Module):
    """A pairwise loss whose reference set is the current batch plus a queue of past ones.

    Holds a ring buffer of the last ``memory_size`` reference embeddings (detached) and
    their labels. A call ``xbm(embeddings, labels, ref_emb=None, ref_labels=None, *,
    miner_masks=None)`` (the call of every loss):

    1. evaluates ``loss(embeddings, labels, [refs; memory], [ref_labels; memory_labels])``
       — the current references first, then the memory rows. Without ``ref_emb`` the
       current references are the batch itself and the pair of an item with itself stays
       excluded (the usual diagonal rule); memory rows are ordinary references, so an
       item seen in an earlier batch is a positive of itself. ``miner_masks``
       (N_q, N_current) cover the current references; the memory columns are all kept
       (mine them with a miner attached to ``loss``, which sees every reference).
    2. in training mode, enqueues the current references (``ref_emb``, or ``embeddings``
       without it), overwriting the oldest rows; a batch larger than the memory keeps its
       last ``memory_size`` rows.

    For the first ``warmup_iters`` training calls the memory is filled but not used (the
    paper starts XBM once the embedding has stopped drifting fast); in eval mode the
    memory is used but never changed. Memory rows carry no gradient. For both directions
    of a cross-modal objective give each direction its own memory around the same loss:
    ``SymmetricLoss(CrossBatchMemory(loss, ...), CrossBatchMemory(loss, ...))``, which
    ``create_loss(name, symmetric=True, memory_size=..., embedding_dim=...)`` builds. Under DDP
    pass the all-gathered references so every rank enqueues the same rows.

    Args:
        loss: a :class:`~crossmodal.losses.PairwiseLoss` (a miner attached to it mines
            over the current references and the memory).
        embedding_dim: D of the embeddings.
        memory_size: rows kept (default 1024).
        warmup_iters: training calls before the memory is used (default 0).
    """

    def __init__(
        self,
        loss: PairwiseLoss,
        embedding_dim: int,
        memory_size: int = 1024,
        warmup_iters: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(loss, PairwiseLoss):
            raise TypeError(
                f"CrossBatchMemory needs a pairwise loss (extra reference rows); got "
                f"{type(loss).__name__}"
            )
        if memory_size < 1:
            raise ValueError(f"memory_size must be >= 1, got {memory_size}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if warmup_iters < 0:
            raise ValueError(f"warmup_iters must be >= 0, got {warmup_iters}")
        self.loss = loss
        self.memory_size = memory_size
        self.warmup_iters = warmup_iters
        self.register_buffer("memory_emb", torch.zeros(memory_size, embedding_dim))
        self.register_buffer("memory_labels", torch.zeros(memory_size, dtype=torch.long))
        self.register_buffer("num_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("write_pos", torch.zeros((), dtype=torch.long))
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _extend_masks(
        miner_masks: tuple[Tensor, Tensor] | None,
        rows: int,
        current: int,
        all_ref: Tensor,
        self_ref: bool,
    ) -> tuple[Tensor, Tensor] | None:
        """The caller's masks over the ``current`` references, widened to the memory
        columns (all kept: the caller mined the batch, not the memory); in the self case
        the batch's diagonal stays excluded."""
        if miner_masks is None and not self_ref:
            return None
        keep = torch.ones(rows, all_ref.shape[0], dtype=torch.bool, device=all_ref.device)
        if self_ref:
            # The batch is its own first reference block: keep excluding its diagonal.
            keep[:, :current].fill_diagonal_(False)
        if miner_masks is None:
            return keep, keep
        pos, neg = keep, keep.clone()
        for widened, mask in ((pos, miner_masks[0]), (neg, miner_masks[1])):
            if mask.shape != (rows, current):
                raise ValueError(
                    f"miner masks have shape {tuple(mask.shape)}; the call has {rows} queries "
                    f"and {current} current references"
                )
            widened[:, :current] &= mask.to(widened.device)
        return pos, neg

    @property
    def embedding_dim(self) -> int:
        return self.memory_emb.shape[1]

    def memory(self) -> tuple[Tensor, Tensor]:
        """The filled rows (embeddings, labels), oldest first."""
        filled, pos = int(self.num_filled), int(self.write_pos)
        if filled < self.memory_size:
            return self.memory_emb[:filled], self.memory_labels[:filled]
        order = torch.cat([torch.arange(pos, filled), torch.arange(0, pos)])
        order = order.to(self.memory_emb.device)
        return self.memory_emb[order], self.memory_labels[order]

    def reset(self) -> None:
        """Empty the memory and restart the warm-up count."""
        self.num_filled.zero_()
        self.write_pos.zero_()
        self.iteration.zero_()

    @torch.no_grad()
    def enqueue(self, embeddings: Tensor, labels: Tensor) -> None:
        """Write rows into the ring buffer (the last ``memory_size`` if there are more)."""
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings have dim {embeddings.shape[1]}, the memory holds {self.embedding_dim}"
            )
        if self.memory_emb.device != embeddings.device:
            self.memory_emb = self.memory_emb.to(embeddings.device)
            self.memory_labels = self.memory_labels.to(embeddings.device)
        embeddings, labels = embeddings[-self.memory_size :], labels[-self.memory_size :]
        n, pos = embeddings.shape[0], int(self.write_pos)
        slots = (torch.arange(n, device=embeddings.device) + pos) % self.memory_size
        self.memory_emb[slots] = embeddings.detach().to(self.memory_emb.dtype)
        self.memory_labels[slots] = labels.to(torch.long)
        self.write_pos.fill_((pos + n) % self.memory_size)
        self.num_filled.fill_(min(int(self.num_filled) + n, self.memory_size))

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        miner_masks: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        labels, ref_labels = check_inputs(embeddings, labels, ref_emb, ref_labels)
        current, current_labels = (embeddings, labels) if ref_emb is None else (ref_emb, ref_labels)
        # The ring buffer's state is small host-side bookkeeping (one read per call, not
        # per block of the loss).
        warm = not self.training or int(self.iteration) >= self.warmup_iters
        if warm and int(self.num_filled) > 0:
            mem_emb, mem_labels = self.memory()
            all_ref = torch.cat([current, mem_emb.to(current.device, current.dtype)])
            all_labels = torch.cat([current_labels, mem_labels.to(current.device)])  # type: ignore[list-item]
            value = self.loss(
                embeddings,
                labels,
                all_ref,
                all_labels,
                miner_masks=self._extend_masks(
                    miner_masks,
                    embeddings.shape[0],
                    current.shape[0],
                    all_ref,
                    self_ref=ref_emb is None,
                ),
            )
        else:
            value = self.loss(embeddings, labels, ref_emb, ref_labels, miner_masks=miner_masks)
        if self.training:
            self.enqueue(current, current_labels)  # type: ignore[arg-type]
            self.iteration += 1
        return value
