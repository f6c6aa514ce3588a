"""`attnc fit`: per head, the best program (chosen on fit windows, reported held-out); the selected library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
    parser.add_argument("--model", default="", help="model name recorded in fits.json")
    parser.add_argument("--window", type=int, default=0, help="window length recorded in fits.json")
    parser.add_argument("--tolerance", type=float, default=0.01, help="allowed shortfall of the selected library (default 0.01)")
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
    singles = best_single_fits(table)
    selection = select_library(table, tolerance=args.tolerance)
    write_fits(fits_from_results(args.model, args.window, table.n_windows_fit, table.n_windows_heldout, singles),
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
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['n_heads']} heads: mean best-fit IoU {summary['mean_best_iou_fit']:.3f} (fit), "
              f"{summary['mean_best_iou_heldout']:.3f} (held-out) -> {args.out}")
        print(f"selected library: {selection.size} of {len(table.programs)} programs keep held-out IoU "
              f"{selection.value:.3f} (all: {selection.full_value:.3f}, tolerance {args.tolerance})")
    return 0
