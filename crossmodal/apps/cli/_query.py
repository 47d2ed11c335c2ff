"""Shared body of `crossmodal recommend` and `crossmodal find-video`."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def add_query_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("queries", nargs="+", metavar="FILE", help=what)
    parser.add_argument("--index", required=True, help="index folder written by `crossmodal index`")
    parser.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default="auto")


def run_queries(args: argparse.Namespace, direction: str) -> int:
    """Answer every query file; a file that fails gets its own error and the others are
    still answered. Exit code 0 when all succeeded, 1 otherwise."""
    from crossmodal.data.errors import MediaError
    from crossmodal.retrieval.recommender import Recommender
    from crossmodal.training.trainer import resolve_device

    recommender = Recommender.load(args.index, device=resolve_device(args.device))
    search = recommender.recommend_music if direction == "music" else recommender.find_videos
    options: dict[str, object] = {}
    if getattr(args, "tag", None):
        options = {"tag": args.tag, "tag_weight": args.tag_weight}
    results: dict[str, object] = {}
    failures = 0
    for query in args.queries:
        try:
            matches = search(query, k=args.k, **options)
        except MediaError as err:
            failures += 1
            log.error("%s: %s", query, err.reason)
            results[query] = {"error": err.reason}
            continue
        results[query] = [m.to_dict() for m in matches]
        if not args.json:
            print(f"{query}")
            for m in matches:
                label = f"  [{m.label}]" if m.label else ""
                tags = ", ".join(f"{t} {p:.2f}" for t, p in (m.tags or {}).items())
                print(
                    f"  {m.rank:>2}. {m.score:6.3f}  {m.path}  {m.start:.1f}–{m.end:.1f} s{label}"
                    + (f"  ({tags})" if tags else "")
                )
    recommender.close()
    if args.json:
        print(json.dumps({"results": results, "failed": failures}, indent=2))
    return 1 if failures else 0
