"""Loss quality on real labelled data: ours vs pytorch-metric-learning (PML), each with
its library's defaults, on small protocols that run in minutes on a CPU.

Data: scikit-learn's digits (1,797 real hand-written 8×8 digits, 10 classes; shipped
inside the scikit-learn package, so nothing is downloaded), features standardised on the
train split. Two protocols, so that defaults are not tuned to one set:

* ``split``: a stratified split of 1,257 train / 540 test over all 10 classes
  (``--seeds`` picks the split and the torch seed);
* ``disjoint``: the standard metric-learning protocol, class-disjoint: train on digits
  0–4, test on the unseen digits 5–9 (seed ``s`` ≥ 1 swaps the halves for odd ``s``:
  train 5–9, test 0–4).

Model: an MLP 64 → 128 → 64 (ReLU) gives raw embeddings that go to the loss as they are
(both libraries normalise where their loss wants it); Adam lr 1e-3 (loss parameters such
as proxies included), batch 128, 40 epochs, torch seed per run. Score: MAP@R on the test
set, each test item querying the other test items by cosine (ties count against the
model).

    .venv/bin/python bench/loss_quality.py                       # every loss, both libraries
    .venv/bin/python bench/loss_quality.py --losses arcface npair --protocols disjoint --seeds 0 1

Writes a Markdown table to ``bench/results/loss_quality.md`` (``--out``). PML's scores
do not change with our code, so they are kept in ``bench/results/loss_quality_pml.json``
(``--pml-cache``) and reused; ``--pml-skip`` (default ``info_nce lifted_structure``) leaves
out PML losses too slow for the CPU budget: PML's ``NTXentLoss`` takes about 2 s a step
at batch 128 (15 min a run) and its ``LiftedStructureLoss`` over 1 s, as both build
per-pair matrices.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossmodal.evaluation.ranking import rank_chunk
from crossmodal.losses import create_loss, list_losses, loss_kind

EMBEDDING_DIM = 64


def _pml_counterparts(num_classes: int) -> dict[str, Callable[[], nn.Module]]:
    from pytorch_metric_learning import losses as pml

    proxy = {"num_classes": num_classes, "embedding_size": EMBEDDING_DIM}
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
        "supcon": pml.SupConLoss,
    }


def digits_split(protocol: str, seed: int) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y), standardised with the train split's statistics;
    train labels are 0..C−1 (the proxy losses' class indices)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    if protocol == "split":
        train_x, test_x, train_y, test_y = train_test_split(
            x, y, test_size=540, stratify=y, random_state=seed
        )
    elif protocol == "disjoint":
        low = y < 5
        train, test = (~low, low) if seed % 2 else (low, ~low)
        train_x, train_y, test_x, test_y = x[train], y[train], x[test], y[test]
        train_y = train_y - train_y.min()
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
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


def ours(name: str, num_classes: int) -> Callable[[], nn.Module]:
    if loss_kind(name) == "proxy":
        return lambda: create_loss(name, num_classes=num_classes, embedding_dim=EMBEDDING_DIM)
    return lambda: create_loss(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", nargs="*", default=None, help="registry names (default all)")
    parser.add_argument(
        "--protocols", nargs="+", default=["split", "disjoint"], choices=["split", "disjoint"]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-pml", action="store_true", help="ours only")
    parser.add_argument(
        "--pml-skip", nargs="*", default=["info_nce", "lifted_structure"], help="PML losses to skip"
    )
    parser.add_argument(
        "--pml-cache",
        type=Path,
        default=Path(__file__).parent / "results" / "loss_quality_pml.json",
        help="PML scores by loss/protocol/seed, reused and extended",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "loss_quality.md"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = [(protocol, seed) for protocol in args.protocols for seed in args.seeds]
    names = args.losses or list_losses()
    if args.losses is None and not args.no_pml:
        names += [n for n in _pml_counterparts(2) if n not in names]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    scores: dict[tuple[str, str, int], tuple[float | None, float | None]] = {}
    started = time.perf_counter()
    cache = json.loads(args.pml_cache.read_text()) if args.pml_cache.exists() else {}
    for protocol, seed in settings:
        data = digits_split(protocol, seed)
        num_classes = int(data[1].max()) + 1
        pml = {} if args.no_pml else _pml_counterparts(num_classes)
        for name in names:
            mine = (
                train_and_score(ours(name, num_classes), data, seed=seed)
                if name in list_losses()
                else None
            )
            theirs = None
            key = f"{name}/{protocol}/{seed}"
            if key in cache and not args.no_pml:
                theirs = cache[key]
            elif name in pml and name not in args.pml_skip:
                theirs = cache[key] = train_and_score(pml[name], data, seed=seed)
                args.pml_cache.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
            scores[name, protocol, seed] = (mine, theirs)
            print(
                f"{protocol:8s} {seed} {name:22s} ours {fmt(mine)}  PML {fmt(theirs)}", flush=True
            )
    lines = [
        "# Loss quality: MAP@R on scikit-learn digits (real data), library defaults",
        "",
        "MLP 64→128→64, Adam 1e-3, batch 128, 40 epochs, "
        f"{args.threads} thread(s); {time.perf_counter() - started:.0f} s in all. Protocols "
        "(see the docstring of bench/loss_quality.py): `split` s = stratified 1,257 train / "
        "540 test over the 10 digits at seed s; `disjoint` 0 = train on digits 0–4, test on "
        "the unseen 5–9, `disjoint` 1 = the reverse. Each cell: ours / PML (ours − PML).",
        "",
        "| loss | "
        + " | ".join(f"{p} {s}" for p, s in settings)
        + " | min ours | min ours − PML |",
        "|---|" + "---:|" * (len(settings) + 2),
    ]
    for name in names:
        cells, mins, gaps = [], [], []
        for key in settings:
            mine, theirs = scores[(name, *key)]
            cell = f"{fmt(mine)} / {fmt(theirs)}"
            if mine is not None:
                mins.append(mine)
            if mine is not None and theirs is not None:
                cell += f" ({mine - theirs:+.3f})"
                gaps.append(mine - theirs)
            cells.append(cell)
        low = fmt(min(mins)) if mins else "–"
        gap = f"{min(gaps):+.3f}" if gaps else "–"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {low} | {gap} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"table: {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
