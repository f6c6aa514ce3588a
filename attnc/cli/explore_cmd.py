"""`attnc explore OUT/ [--out DIR]`: a static site to browse a study (open DIR/index.html)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnc.explore.attention_views import DEFAULT_TOKENS, DEFAULT_WINDOWS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "explore", help="write a static site to browse a study: head grid, head and program pages",
        description="Read the out dir of `attnc study` (results.json, heads.csv, and the fits, library and "
                    "attention in its cache) and write a self-contained site: index.html (layer x head grid, "
                    "sortable heads table, perplexity sweep), a page per head (program source, neural vs program "
                    "attention on held-out windows) and a page per program. Opens from file://, no server.")
    parser.add_argument("study", type=Path, metavar="OUT", help="the --out directory of an `attnc study` run")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="where the site goes (default OUT/explorer)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="the study's stage cache, if it ran with --cache (default OUT/cache)")
    parser.add_argument("--model", default=None,
                        help="model whose tokenizer labels the tokens (default: the study's model)")
    parser.add_argument("--windows", type=int, default=DEFAULT_WINDOWS,
                        help=f"held-out windows shown per head (default {DEFAULT_WINDOWS})")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS,
                        help=f"tokens shown per window (default {DEFAULT_TOKENS})")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from attnc.explore import ExploreError, build_explorer

    if args.windows < 1 or args.tokens < 2:
        print("attnc explore: error: --windows must be >= 1 and --tokens >= 2", file=sys.stderr)
        return 2
    try:
        site = build_explorer(args.study, args.out, cache=args.cache, model=args.model, windows=args.windows,
                              tokens=args.tokens)
    except (ExploreError, OSError) as error:
        print(f"attnc explore: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"index": str(site.index), "pages": len(site.pages), "bytes": site.n_bytes,
                          "notes": site.notes, "seconds": site.seconds}, indent=2))
    else:
        print(f"wrote {site.index} ({len(site.pages)} pages, {site.n_bytes / 1e6:.1f} MB, {site.seconds:.1f} s)")
        for note in site.notes:
            print(f"  not shown: {note}")
    return 0
