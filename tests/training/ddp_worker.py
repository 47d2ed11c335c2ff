"""One rank of the 2-process gloo test in test_distributed.py (run as a script).

Usage: python ddp_worker.py RANK WORLD PORT OUT_DIR. Builds the same seeded data as the
test, keeps this rank's rows, and saves losses and gradients to OUT_DIR/rank{RANK}.pt.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from crossmodal.losses import InfoNCELoss, default_objective
from crossmodal.training.distributed import all_gather_no_grad, all_gather_with_grad

# Rows per rank deliberately differ (the gather pads and cuts).
SIZES = (5, 7)
DIM, IN_DIM = 4, 6
LOSS_NAMES = (
    "info_nce",
    "contrastive",
    "triplet_margin",
    "circle",
    "npair",
    "multi_similarity",
    "lifted_structure",
)


def gather_embeddings(
    embeddings: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """All-gather embeddings (with gradients) and labels (without), as the trainer does."""
    return all_gather_with_grad(embeddings), all_gather_no_grad(labels)


def full_data() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    n = sum(SIZES)
    return {
        "video": torch.randn(n, DIM, generator=gen, dtype=torch.float64),
        "music": torch.randn(n, DIM, generator=gen, dtype=torch.float64),
        "labels": torch.randint(0, 4, (n,), generator=gen),
        "video_in": torch.randn(n, IN_DIM, generator=gen, dtype=torch.float64),
        "music_in": torch.randn(n, IN_DIM, generator=gen, dtype=torch.float64),
        "unique": torch.arange(n),
    }


class Towers(torch.nn.Module):
    """Two linear towers into one space (a stand-in for the real model)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.video = torch.nn.Linear(IN_DIM, DIM).double()
        self.music = torch.nn.Linear(IN_DIM, DIM).double()

    def forward(self, video_in: torch.Tensor, music_in: torch.Tensor):
        return self.video(video_in), self.music(music_in)


def main(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    from crossmodal.losses import create_loss

    data = full_data()
    start = sum(SIZES[:rank])
    local = {k: v[start : start + SIZES[rank]] for k, v in data.items()}
    result: dict[str, object] = {}

    gathered = all_gather_with_grad(local["video"])
    result["gathered"] = gathered.detach()

    # Every rank computes the full loss on the gathered batch.
    for name in LOSS_NAMES:
        video = local["video"].clone().requires_grad_(True)
        music = local["music"].clone().requires_grad_(True)
        video_all, labels_all = gather_embeddings(video, local["labels"])
        music_all, _ = gather_embeddings(music, local["labels"])
        loss = create_loss(name).double()
        value = loss(video_all, labels_all, music_all, labels_all)
        value.backward()
        result[name] = (value.detach(), video.grad, music.grad)

    # Local queries against gathered references (equal-size ranks: use the first 5 rows).
    video = local["video"][:5].clone().requires_grad_(True)
    music = local["music"][:5].clone().requires_grad_(True)
    labels = local["unique"][:5]
    music_all, labels_all = gather_embeddings(music, labels)
    value = InfoNCELoss(temperature=0.1, learnable=False)(video, labels, music_all, labels_all)
    value.backward()
    result["local"] = (value.detach(), video.grad, music.grad)

    # DDP towers trained with the default objective on gathered embeddings.
    model = DistributedDataParallel(Towers())
    objective = default_objective().double()
    video_emb, music_emb = model(local["video_in"], local["music_in"])
    video_all, labels_all = gather_embeddings(video_emb, local["labels"])
    music_all, _ = gather_embeddings(music_emb, local["labels"])
    value = objective(video_all, labels_all, music_all, labels_all)
    value.backward()
    result["ddp"] = (
        value.detach(),
        {n: p.grad.clone() for n, p in model.module.named_parameters()},
        objective.terms["info_nce"].loss.log_scale.grad.clone(),
    )
    torch.save(result, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
