"""`attnc fit`: per head, the best program (chosen on fit windows, reported held-out); the selected library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Model whose tokenizer the programs read when --mixtures is given without --model.
DEFAULT_VOCAB_MODEL = "smollm2-135m"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="choose the best program per head from a score table and write fits.json",
        description="Per head, the program with the highest fit IoU, reported with its held-out IoU; "
                    "also the smallest program set that keeps the mean held-out best-fit IoU within "
                    "--tolerance of the whole library.",
    )
    parser.add_argument("--scores", required=True, type=Path, help="score table written by `attnc score`")
    parser.add_argument("--out", required=True, type=Path, help="fits.json to write")
    parser.add_argument("--model", default="", help="model name recorded in fits.json; with --mixtures also the model whose tokenizer the programs read (default there: smollm2-135m)")
    parser.add_argument("--window", type=int, default=0, help="window length recorded in fits.json")
    parser.add_argument("--tolerance", type=float, default=0.01, help="allowed shortfall of the selected library (default 0.01)")
    parser.add_argument("--mixtures", type=int, default=None, metavar="K",
                        help="also fit a convex mixture of at most K (>= 2) programs per head (needs --store, --lib)")
    parser.add_argument("--store", type=Path, default=None, help="attention store of the scored heads (`attnc extract --split all`)")
    parser.add_argument("--lib", type=Path, default=None, help="library directory the table was scored with")
    parser.add_argument("--candidates", type=int, default=6, help="top programs per head tried in a mixture (default: 6)")
    parser.add_argument("--search-windows", type=int, default=32, help="fit windows used to search mixture weights (default: 32)")
    parser.add_argument("--search-seed", type=int, default=0, help="seed of the search subsample (default: 0)")
    parser.add_argument("--heldout-fraction", type=float, default=0.5,
                        help="only for a store without a recorded split: share held out (default: 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="only for a store without a recorded split: split seed (default: 0)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from attnc.study.fits_file import fits_from_results, write_fits
    from attnc.study.fitting import best_single_fits
    from attnc.study.scoring import ScoreTable
    from attnc.study.selection import select_library

    try:
        table = ScoreTable.load(args.scores)
    except (OSError, ValueError) as error:
        print(f"attnc fit: error: {args.scores}: {error}", file=sys.stderr)
        return 2
    mixtures = None
    if args.mixtures is not None:
        try:
            run = _fit_mixtures(args, table)
        except _user_errors() as error:
            print(f"attnc fit: error: {error}", file=sys.stderr)
            return 2
        mixtures = run.mixtures
    singles = best_single_fits(table)
    selection = select_library(table, tolerance=args.tolerance)
    write_fits(fits_from_results(args.model, args.window, table.n_windows_fit, table.n_windows_heldout, singles,
                                 mixtures=mixtures),
               args.out)
    summary = {
        "fits": str(args.out),
        "n_heads": len(singles),
        "n_programs": len(table.programs),
        "mean_best_iou_fit": sum(s.iou_fit for s in singles.values()) / len(singles),
        "mean_best_iou_heldout": sum(s.iou_heldout for s in singles.values()) / len(singles),
        "n_programs_selected": selection.size,
        "selected_value_heldout": selection.value,
        "selected_programs": list(selection.programs),
    }
    if mixtures is not None:
        summary["mixtures"] = args.mixtures
        summary["mean_best_mixture_iou_fit"] = sum(m.iou_fit for m in mixtures.values()) / len(mixtures)
        summary["mean_best_mixture_iou_heldout"] = sum(m.iou_heldout for m in mixtures.values()) / len(mixtures)
        summary["mixture_windows_fit"] = run.n_windows_fit
        summary["mixture_windows_heldout"] = run.n_windows_heldout
        summary["mixture_split_source"] = run.split_source
        summary["mixture_seconds"] = round(run.seconds, 2)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['n_heads']} heads: mean best-fit IoU {summary['mean_best_iou_fit']:.3f} (fit), "
              f"{summary['mean_best_iou_heldout']:.3f} (held-out) -> {args.out}")
        print(f"selected library: {selection.size} of {len(table.programs)} programs keep held-out IoU "
              f"{selection.value:.3f} (all: {selection.full_value:.3f}, tolerance {args.tolerance})")
        if mixtures is not None:
            print(f"mixtures of <= {args.mixtures} programs: mean IoU {summary['mean_best_mixture_iou_fit']:.3f} (fit), "
                  f"{summary['mean_best_mixture_iou_heldout']:.3f} (held-out) on {run.n_windows_fit} + "
                  f"{run.n_windows_heldout} stored windows")
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    from attnc.cli.corpus_args import user_errors
    from attnc.compiler import WindowError

    return (*user_errors(), WindowError)


def _fit_mixtures(args: argparse.Namespace, table):
    """Mixtures of every head (see `attnc.study.mixture_run`); ValueError etc. for bad input."""
    from attnc.runtime.library import load_library
    from attnc.runtime.models import load_model
    from attnc.runtime.store import AttentionStore
    from attnc.study.mixture_run import fit_store_mixtures

    if args.mixtures < 2:
        raise ValueError(f"--mixtures K needs K >= 2 (got {args.mixtures}); without it, fit picks one program per head")
    if args.store is None or args.lib is None:
        raise ValueError("--mixtures needs --store (attention of the scored heads) and --lib (the scored library)")
    store = AttentionStore.open(args.store)
    library = load_library(args.lib)
    loaded = load_model(args.model or DEFAULT_VOCAB_MODEL)
    tokenizer = store.meta.get("tokenizer")
    if tokenizer and Path(loaded.tokenizer_name).resolve() != Path(tokenizer).resolve():
        print(f"attnc fit: warning: {args.store} was extracted with tokenizer {tokenizer!r}, but "
              f"{args.model or DEFAULT_VOCAB_MODEL!r} has {loaded.tokenizer_name!r}; pass the extracted model "
              f"with --model if the programs read the wrong vocabulary", file=sys.stderr)
    library.vocab = loaded.vocab
    return fit_store_mixtures(store, table, library.programs, loaded.vocab, k=args.mixtures, n_candidates=args.candidates,
                              search_windows=args.search_windows, seed=args.search_seed,
                              heldout_fraction=args.heldout_fraction, split_seed=args.seed)
