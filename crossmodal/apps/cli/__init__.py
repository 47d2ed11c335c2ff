"""The ``crossmodal`` command line.

Each subcommand lives in its own module under ``crossmodal.apps.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the
parsed namespace and returning an exit code). Modules import heavy dependencies (torch,
decord, faiss) inside ``func`` so that ``crossmodal --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
from collections.abc import Sequence

from crossmodal import __version__
from crossmodal.errors import CrossmodalError
from crossmodal.logging_utils import setup_logging

# `--help` lists these first, in this order (the user's path through the product); any
# other subcommand module follows alphabetically.
PREFERRED_ORDER = (
    "demo",
    "synth",
    "data",
    "train",
    "evaluate",
    "embed",
    "index",
    "recommend",
    "find-video",
    "info",
)


def _discover() -> tuple[str, ...]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    rank = {name.replace("-", "_"): i for i, name in enumerate(PREFERRED_ORDER)}
    return tuple(sorted(names, key=lambda n: (rank.get(n, len(rank)), n)))


# Subcommand modules (module name; the command name is set by the module's parser).
COMMANDS: tuple[str, ...] = _discover()

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossmodal",
        description=(
            "Match video and music in one learned embedding space: recommend music for a "
            "video, find videos that fit a piece of audio."
        ),
        epilog="Run `crossmodal COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"crossmodal {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    verbosity.add_argument(
        "-q", "--quiet", action="count", default=0, help="less log output (warnings only)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"crossmodal.apps.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Commands that take config overrides (`--key value` for any config field) receive the
    # arguments argparse does not know; every other command rejects them.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.config_overrides = extra
    setup_logging(args.verbose - args.quiet)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except CrossmodalError as err:
        log.error("%s", err)
        return 2
