"""`attnc extract`: corpus -> windows -> attention store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from attnc.cli.corpus_args import add_corpus_arguments, load_model_and_windows, user_errors
from attnc.cli.parallel_args import add_parallel_arguments, pool_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="run a model over corpus windows and store its attention maps",
        description=(
            "Tokenize a corpus once, cut it into windows, run the model with eager attention and "
            "write the chosen heads' maps (float16 safetensors shards) to --out. Rerunning the same "
            "command resumes an interrupted extraction."
        ),
    )
    add_corpus_arguments(parser)
    parser.add_argument("--heads", default=None, help="heads as layer.head, comma separated (also L.* and all); default all")
    parser.add_argument("--split", choices=("fit", "heldout", "all"), default="all", help="which windows to extract (default: all)")
    parser.add_argument("--shard-size", type=int, default=None, help="windows per shard file (default: ~256 MiB of maps)")
    parser.add_argument("--out", required=True, type=Path, help="store directory")
    parser.add_argument("--overwrite", action="store_true", help="replace a different store already in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_parallel_arguments(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from attnc.runtime.corpus import CorpusError
    from attnc.runtime.extract import extract_attention
    from attnc.runtime.heads import parse_heads

    pool = None
    try:
        corpus, loaded, windows = load_model_and_windows(args)
        pool = pool_from_args(args, args.model, loaded)
        heads = parse_heads(args.heads, n_layers=loaded.n_layers, n_heads=loaded.n_heads) if args.heads else None
        chosen = windows.indices(args.split)
        if len(chosen) == 0:
            raise CorpusError(f"the {args.split} split is empty (heldout fraction {args.heldout_fraction})")
        begin = time.perf_counter()
        store = extract_attention(
            loaded,
            windows.ids[chosen],
            store_dir=args.out,
            heads=heads,
            batch_size=args.batch_size,
            shard_size=args.shard_size,
            window_indices=chosen,
            corpus_sha256=corpus.sha256,
            windows_info={**windows.describe(), "extracted_split": args.split},
            overwrite=args.overwrite,
            progress=not args.no_progress,
            pool=pool,
        )
        seconds = time.perf_counter() - begin
    except user_errors() as error:
        print(f"attnc extract: error: {error}", file=sys.stderr)
        return 2
    finally:
        if pool is not None:
            pool.close()
    result = {
        "store": str(args.out),
        "model": loaded.name,
        "corpus": str(args.corpus),
        "corpus_sha256": corpus.sha256,
        "window": args.window,
        "mode": args.mode,
        "split": args.split,
        "n_windows": store.n_windows,
        "n_heads": len(store.heads),
        "n_shards": store.meta["n_shards"],
        "seconds": round(seconds, 3),
        "workers": pool.workers if pool is not None else 1,
        "bytes": sum(p.stat().st_size for p in Path(args.out).glob("shard-*.safetensors")),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"extracted {result['n_windows']} windows x {result['n_heads']} heads of {loaded.name} "
            f"(window {args.window}, {args.mode}, {args.split}) into {args.out} "
            f"[{result['n_shards']} shards, {result['bytes'] / 1e6:.1f} MB, {seconds:.1f} s]"
        )
    return 0
