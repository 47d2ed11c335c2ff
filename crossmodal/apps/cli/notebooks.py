"""`crossmodal notebooks`: build the notebooks' shared corpus, model and index ahead of time."""

from __future__ import annotations

import argparse

from crossmodal.apps.pipeline import STAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "notebooks",
        help="build (or find) the corpus, model and index the notebooks share",
        description=(
            "Build the notebooks' shared assets ahead of time (each notebook otherwise builds "
            "what it needs on first use) and print, as JSON, where they are and whether each "
            "stage was built or reused. The cache is $CROSSMODAL_NOTEBOOK_CACHE, else "
            "$XDG_CACHE_HOME/crossmodal/notebooks."
        ),
    )
    parser.add_argument(
        "--stage", choices=STAGES, default="index", help="build this stage and what it needs"
    )
    parser.add_argument("--cache", default=None, help="cache root folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from crossmodal.apps.notebooks.assets import NotebookAssets

    assets = NotebookAssets(root=args.cache)
    getattr(assets, args.stage)()
    print(json.dumps(assets.summary(), indent=2))
    return 0
