"""The ``crossmodal`` command line.

Each subcommand lives in its own module under ``crossmodal.apps.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the
parsed namespace and returning an exit code). Modules import heavy dependencies (torch,
decord, faiss) inside ``func`` so that ``crossmodal --help`` stays fast.

Exit codes (the one contract every subcommand follows; see :data:`EXIT_CODES`): 0
success; 1 some inputs failed (each listed on stderr), the rest were processed; 2 a usage
or input error (bad arguments, unreadable manifest or index, disk full): one line says
what is wrong and what to do; 3 an internal error: a bug, whose full traceback goes to a
log file that the one-line message names; 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

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
    "dub",
    "serve",
    "info",
)


def _discover() -> tuple[str, ...]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    rank = {name.replace("-", "_"): i for i, name in enumerate(PREFERRED_ORDER)}
    return tuple(sorted(names, key=lambda n: (rank.get(n, len(rank)), n)))


# Subcommand modules (module name; the command name is set by the module's parser).
COMMANDS: tuple[str, ...] = _discover()

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INPUTS_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_INPUTS_FAILED: "some inputs failed (each is listed); the others were processed",
    EXIT_USAGE: "usage or input error (bad arguments, unreadable input or index, disk full): "
    "one line says what to do",
    EXIT_INTERNAL: "internal error: a bug; the message names the log file with the traceback",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
# OS errors that are the environment's, not ours: reported in one line with exit code 2.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EMFILE,
    errno.ENAMETOOLONG,
    errno.EIO,
}


def _epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    return (
        "Run `crossmodal COMMAND --help` for the options of one command. -v/-q may be given "
        f"before or after COMMAND.\n\nexit codes:\n{codes}"
    )


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    # Top level: counts start at 0. After COMMAND: SUPPRESS, so an option given only before
    # COMMAND is not reset by the subcommand's parser.
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v", "--verbose", action="count", default=default, help="more log output (-vv for debug)"
    )
    group.add_argument(
        "-q", "--quiet", action="count", default=default, help="less log output (warnings only)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossmodal",
        description=(
            "Match video and music in one learned embedding space: recommend music for a "
            "video, find videos that fit a piece of audio."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crossmodal {__version__}")
    _add_verbosity(parser, 0)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"crossmodal.apps.cli.{name}").register(subparsers)
    for subparser in subparsers.choices.values():
        _add_verbosity(subparser, argparse.SUPPRESS)
    return parser


def crash_log_dir() -> Path:
    """Where internal errors write their traceback: ``$CROSSMODAL_LOG_DIR``, else the
    user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)/crossmodal/logs."""
    configured = os.environ.get("CROSSMODAL_LOG_DIR")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "crossmodal" / "logs"


def _write_crash_log(err: BaseException, argv: Sequence[str]) -> str:
    """Write the traceback of ``err`` to a new file; return its path (or why it failed)."""
    text = (
        f"crossmodal {__version__}, python {sys.version.split()[0]}\n"
        f"command: crossmodal {' '.join(map(repr, argv))}\n\n"
        + "".join(traceback.format_exception(err))
    )
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (crash_log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8", errors="backslashreplace")
            return str(path)
        except OSError:
            continue
    return "(no writable log folder: rerun with -v to see it)"


def _environment_error(err: OSError) -> str | None:
    """A one-line message for OS errors the user can fix (disk full, permissions), else None."""
    if err.errno not in _ENVIRONMENT_ERRNOS:
        return None
    where = err.filename if err.filename is not None else ""
    reason = err.strerror or os.strerror(err.errno)
    what = {
        errno.ENOSPC: "free some space and run the command again",
        errno.EDQUOT: "free some space and run the command again",
        errno.EACCES: "check the file's permissions",
        errno.EPERM: "check the file's permissions",
        errno.EROFS: "choose a writable location",
    }.get(err.errno, "check the path")
    return f"{where!s}: {reason}; {what}" if where else f"{reason}; {what}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns an exit code of :data:`EXIT_CODES`."""
    argv = list(sys.argv[1:] if argv is None else argv)
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
        return EXIT_OK
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    except CrossmodalError as err:
        log.error("%s", err)
        return EXIT_USAGE
    except OSError as err:
        message = _environment_error(err)
        if message is None:
            return _internal_error(err, argv)
        log.error("%s", message)
        return EXIT_USAGE
    except Exception as err:  # the last line of defence: reported as a bug
        return _internal_error(err, argv)


def _internal_error(err: BaseException, argv: Sequence[str]) -> int:
    where = _write_crash_log(err, argv)
    log.debug("internal error", exc_info=err)
    summary = str(err).splitlines()[0] if str(err) else ""
    log.error(
        "internal error (%s%s): this is a bug in crossmodal; the full traceback is in %s "
        "(please attach it to a bug report)",
        type(err).__name__,
        f": {summary[:200]}" if summary else "",
        where,
    )
    return EXIT_INTERNAL
