"""Loss quality on real labelled data: ours vs pytorch-metric-learning (PML), each with
its library's defaults, on one small protocol that runs in minutes on a CPU.

Protocol: scikit-learn's digits (1,797 real hand-written 8×8 digits, 10 classes; shipped
inside the scikit-learn package, so nothing is downloaded), a stratified split of 1,257
train / 540 test (``--split-seed``; a second seed is the check that defaults were not
tuned to one split), features standardised on the train split; an MLP 64 → 128 → 64
(ReLU) gives raw embeddings that go to the loss as they are (both libraries normalise
where their loss wants it); Adam lr 1e-3 (loss parameters such as proxies included),
batch 128, 40 epochs, torch seed per run. Score: MAP@R on the test split, each test item
querying the other test items by cosine (ties count against the model).

    .venv/bin/python bench/loss_quality.py                       # every loss, both libraries
    .venv/bin/python bench/loss_quality.py --losses arcface npair --split-seed 1

Writes a Markdown table to ``bench/results/loss_quality.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossmodal.evaluation.ranking import rank_chunk
from crossmodal.losses import create_loss, is_proxy_loss, list_losses

NUM_CLASSES = 10
EMBEDDING_DIM = 64


def _pml_counterparts() -> dict[str, Callable[[], nn.Module]]:
    from pytorch_metric_learning import losses as pml

    proxy = {"num_classes": NUM_CLASSES, "embedding_size": EMBEDDING_DIM}
    return {
        "contrastive": pml.ContrastiveLoss,
        "triplet_margin": pml.TripletMarginLoss,
        "lifted_structure": pml.LiftedStructureLoss,
        "npair": pml.NPairsLoss,
        "multi_similarity": pml.MultiSimilarityLoss,
        "circle": pml.CircleLoss,
        "info_nce": pml.NTXentLoss,
        "large_margin_softmax": lambda: pml.LargeMarginSoftmaxLoss(**proxy),
        "sphereface": lambda: pml.SphereFaceLoss(**proxy),
        "normface": lambda: pml.NormalizedSoftmaxLoss(**proxy),
        "cosface": lambda: pml.CosFaceLoss(**proxy),
        "arcface": lambda: pml.ArcFaceLoss(**proxy),
        "proxy_anchor": lambda: pml.ProxyAnchorLoss(**proxy),
    }


def digits_split(split_seed: int) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y), standardised with the train split's statistics."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        x, y, test_size=540, stratify=y, random_state=split_seed
    )
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.tensor(a, dtype=torch.long)  # noqa: E731
    return as_x(train_x), as_y(train_y), as_x(test_x), as_y(test_y)


def map_at_r(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """MAP@R of every item against the others (itself excluded) by cosine."""
    emb = nn.functional.normalize(embeddings.double(), dim=1)
    scores = emb @ emb.T
    eye = torch.eye(len(labels), dtype=torch.bool)
    scores = scores.masked_fill(eye, float("-inf"))
    relevant = (labels[:, None] == labels[None, :]) & ~eye
    return float(rank_chunk(scores, relevant).map_at_r.mean())


def train_and_score(
    make_loss: Callable[[], nn.Module], data: tuple[torch.Tensor, ...], *, seed: int = 0
) -> float:
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, EMBEDDING_DIM))
    loss_fn = make_loss()
    optimizer = torch.optim.Adam([*net.parameters(), *loss_fn.parameters()], lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(40):
        order = torch.randperm(len(train_y), generator=generator)
        for start in range(0, len(order), 128):
            batch = order[start : start + 128]
            loss = loss_fn(net(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return map_at_r(net(test_x), test_y)


def ours(name: str) -> Callable[[], nn.Module]:
    if is_proxy_loss(name):
        return lambda: create_loss(name, num_classes=NUM_CLASSES, embedding_dim=EMBEDDING_DIM)
    return lambda: create_loss(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", nargs="*", default=None, help="registry names (default all)")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-pml", action="store_true", help="ours only")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "loss_quality.md"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = digits_split(args.split_seed)
    pml = {} if args.no_pml else _pml_counterparts()
    names = args.losses or [n for n in list_losses() if n != "default"]
    names += [n for n in pml if n not in names and args.losses is None]
    rows = []
    started = time.perf_counter()
    for name in names:
        mine = train_and_score(ours(name), data) if name in list_losses() else None
        theirs = train_and_score(pml[name], data) if name in pml else None
        rows.append((name, mine, theirs))
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:22s} ours {fmt(mine)}  PML {fmt(theirs)}", flush=True)
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        "# Loss quality: MAP@R on scikit-learn digits (real data), library defaults",
        "",
        f"Split seed {args.split_seed} (1,257 train / 540 test), MLP 64→128→64, Adam 1e-3, "
        f"batch 128, 40 epochs, {args.threads} thread(s); {time.perf_counter() - started:.0f} s "
        "in all. See the docstring of bench/loss_quality.py for the protocol.",
        "",
        "| loss | ours | PML | ours − PML |",
        "|---|---:|---:|---:|",
    ]
    for name, mine, theirs in rows:
        diff = "" if mine is None or theirs is None else f"{mine - theirs:+.3f}"
        lines.append(f"| {name} | {fmt(mine)} | {fmt(theirs)} | {diff} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"table: {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
