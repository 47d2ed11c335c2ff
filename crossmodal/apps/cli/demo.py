"""`crossmodal demo`: the whole product on a synthetic corpus, on this machine."""

from __future__ import annotations

import argparse

from crossmodal.apps.cli._args import float_range, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="synth → train → evaluate → index → recommend, with an HTML report",
        description=(
            "Generate a synthetic music-video corpus, train the default CPU model, evaluate "
            "both directions against chance and the untrained model, index the test split's "
            "music and videos, show recommendations for a few test videos, and write an HTML "
            "report (its path is printed at the end). Re-running with the same settings reuses "
            "the corpus, the trained model and the index."
        ),
    )
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument(
        "--clips", type=positive_int, default=1000, help="corpus size (default 1000)"
    )
    parser.add_argument(
        "--train-minutes",
        type=float_range(0, low_inclusive=False),
        default=5.0,
        help="training time budget",
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=10, help="training epochs at most (default 10)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=positive_int, default=2, help="processes rendering the corpus"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crossmodal.apps.demo import DemoConfig, run_demo

    clips = args.clips
    test = max(clips // 5, 1)
    val = max(clips // 10, 1)
    run_demo(
        DemoConfig(
            out=Path(args.out),
            clips=clips,
            split=(clips - val - test, val, test),
            seed=args.seed,
            train_minutes=args.train_minutes,
            epochs=args.epochs,
            workers=args.workers,
        )
    )
    return 0
