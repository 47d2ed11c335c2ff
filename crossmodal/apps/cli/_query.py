"""Shared body of `crossmodal recommend` and `crossmodal find-video`."""

from __future__ import annotations

import argparse
import json
import logging

from crossmodal.apps.cli._args import MAX_K, float_range, int_range

log = logging.getLogger(__name__)


def add_query_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("queries", nargs="+", metavar="FILE", help=what)
    parser.add_argument("--index", required=True, help="index folder written by `crossmodal index`")
    parser.add_argument(
        "-k", type=int_range(1, MAX_K), default=10, help="results per query (default 10)"
    )
    parser.add_argument(
        "--blend",
        type=float_range(0, 1),
        default=None,
        metavar="ALPHA",
        help=(
            "rank by (1-ALPHA)·sync + ALPHA·vibe: 0 the exact pair (sync), 1 the same mood "
            "(vibe); a model with a sync gate counts sync only above it (sure matches "
            "first, the rest by mood); default: the model's, stored in the index. Ignored, "
            "with a note, by models without a vibe part"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default="auto")


def run_queries(args: argparse.Namespace, direction: str) -> int:
    """Answer every query file; a file that fails gets its own error and the others are
    still answered. Exit code 0 when all succeeded, 1 otherwise; an index without the
    library asked for is a usage error (exit code 2) before any query is decoded."""
    from crossmodal.data.errors import MediaError
    from crossmodal.errors import CrossmodalError
    from crossmodal.logging_utils import printable
    from crossmodal.retrieval.recommender import Recommender
    from crossmodal.training.trainer import resolve_device

    recommender = Recommender.load(args.index, device=resolve_device(args.device), blend=args.blend)
    modality = "video" if direction == "music" else "music"  # what the query files give
    library = recommender.store.info().items.get(direction, 0)
    if library == 0:
        recommender.close()
        other, option = ("video", "--music") if direction == "music" else ("music", "--videos")
        raise CrossmodalError(
            f"{args.index} has no {direction} library to search ({direction} items: 0; it was "
            f"built for {other} only): add one with `crossmodal index {option} LIBRARY --out "
            f"{args.index} --checkpoint ...`"
        )
    options: dict[str, object] = {}
    if getattr(args, "tag", None):
        options = {"tag": args.tag, "tag_weight": args.tag_weight}
    results: dict[str, object] = {}
    notes: dict[str, str] = {}  # queries shorter than a window: how they were padded
    moods: dict[str, str] = {}  # each query's predicted mood, when the model predicts one
    failures = 0
    for query in args.queries:
        try:
            answer = recommender.query(query, modality, k=args.k, **options)
        except MediaError as err:
            failures += 1
            log.error("%s: %s", printable(query), printable(err.reason))
            results[printable(query)] = {"error": err.reason}
            continue
        matches = answer.matches
        results[printable(query)] = [m.to_dict() for m in matches]
        if answer.mood is not None:
            moods[printable(query)] = answer.mood
        if answer.padding:
            notes[printable(query)] = answer.padding
        if not args.json:
            print(printable(query) + (f"  (mood: {answer.mood})" if answer.mood else ""))
            if answer.padding:
                print(f"  note: {answer.padding}")
            for m in matches:
                label = f"  [{printable(m.label)}]" if m.label else ""
                tags = ", ".join(f"{t} {p:.2f}" for t, p in (m.tags or {}).items())
                print(
                    f"  {m.rank:>2}. {m.score:6.3f}  {printable(m.path)}  "
                    f"{m.start:.1f}–{m.end:.1f} s{label}" + (f"  ({tags})" if tags else "")
                )
    recommender.close()
    if args.json:
        report = {"results": results, "notes": notes, "moods": moods, "failed": failures}
        print(json.dumps(report, indent=2))
    return 1 if failures else 0
