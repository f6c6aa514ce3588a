"""`attnc score`: IoU of every library program against every head, on fit and held-out windows."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnc.cli.corpus_args import add_corpus_arguments, load_model_and_windows, user_errors
from attnc.cli.parallel_args import add_parallel_arguments, pool_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a compiled library against a model's heads (program x head IoU table)",
        description="Run the model once per window and score every program of LIB against every head "
                    "with the paper's IoU, on the fit and the held-out windows. Writes an .npz table "
                    "(and a CSV with --csv).",
    )
    add_corpus_arguments(parser, corpus_required=False)
    parser.add_argument("--store", type=Path, default=None,
                        help="score against an attention store written by `attnc extract` instead of running "
                             "the model over --corpus (the model is then only used for its tokenizer)")
    parser.add_argument("--lib", required=True, type=Path, help="library directory written by `attnc compile`")
    parser.add_argument("--heads", default=None, help="heads as layer.head, comma separated (also L.* and all); default all")
    parser.add_argument("--out", required=True, type=Path, help="score table to write (.npz)")
    parser.add_argument("--csv", type=Path, default=None, help="also write program,head,iou_fit,iou_heldout rows here")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    add_parallel_arguments(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from attnc.runtime.heads import all_heads, head_name, parse_heads
    from attnc.runtime.library import load_library
    from attnc.study.mixture_run import store_heldout_by_window
    from attnc.study.score_run import (model_attention_batches, score_library, score_model_shards,
                                       score_store_shards, store_attention_batches)

    pool = None
    try:
        if (args.store is None) == (args.corpus is None):
            raise ValueError("give either --corpus (run the model over its windows) or --store (recorded attention)")
        library = load_library(args.lib)  # verify before the model loads
        if not library.names:
            raise ValueError(f"{args.lib}: the library has no valid program")
        if args.store is not None:
            from attnc.runtime.models import load_model
            from attnc.runtime.store import AttentionStore

            store = AttentionStore.open(args.store)
            if args.heads:
                raise ValueError("--heads selects heads to run the model for; a store scores the heads it holds")
            loaded = load_model(args.model)
            pool = pool_from_args(args, args.model, loaded)
            if store.meta.get("model") != loaded.name:
                raise ValueError(f"{args.store} holds attention of {store.meta.get('model')!r}, not of "
                                 f"{loaded.name!r}: pass that model with --model (its tokenizer decodes the windows)")
            heads = store.heads
            heldout = store_heldout_by_window(store)
            if pool is not None:
                run = score_store_shards(pool, store, args.lib, heldout)
            else:
                run = score_library(store_attention_batches(store), library.programs, loaded.vocab,
                                    store.head_names, heldout)
        else:
            corpus, loaded, windows = load_model_and_windows(args)
            pool = pool_from_args(args, args.model, loaded)
            heads = (parse_heads(args.heads, n_layers=loaded.n_layers, n_heads=loaded.n_heads) if args.heads
                     else all_heads(loaded.n_layers, loaded.n_heads))
            names = [head_name(*h) for h in heads]
            if pool is not None:
                run = score_model_shards(pool, windows.ids, names, args.lib, windows.split,
                                         batch_size=args.batch_size)
            else:
                batches = model_attention_batches(loaded, windows.ids, heads=heads, batch_size=args.batch_size)
                run = score_library(batches, library.programs, loaded.vocab, names, windows.split)
    except user_errors() as error:
        print(f"attnc score: error: {error}", file=sys.stderr)
        return 2
    finally:
        if pool is not None:
            pool.close()
    run.table.save(args.out)
    if args.csv:
        run.table.to_csv(args.csv)
    best = run.table.iou_fit.argmax(axis=0)
    summary = {
        "scores": str(args.out),
        "model": loaded.name,
        "corpus": str(args.corpus) if args.corpus else None,
        "store": str(args.store) if args.store else None,
        "window": args.window,
        "n_programs": len(run.table.programs),
        "n_heads": len(run.table.heads),
        "n_windows_fit": run.table.n_windows_fit,
        "n_windows_heldout": run.table.n_windows_heldout,
        "mean_best_iou_heldout": float(run.table.iou_heldout[best, range(len(best))].mean()),
        "failed_programs": run.failures,
        "seconds": round(run.seconds, 2),
        "workers": pool.workers if pool is not None else 1,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"scored {summary['n_programs']} programs x {summary['n_heads']} heads on "
              f"{summary['n_windows_fit']} fit + {summary['n_windows_heldout']} held-out windows in "
              f"{summary['seconds']} s; mean best-fit held-out IoU {summary['mean_best_iou_heldout']:.3f} -> {args.out}")
        for name, message in run.failures.items():
            print(f"  failed: {name}: {message}", file=sys.stderr)
    return 0
