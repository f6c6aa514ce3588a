"""`attnc tune`: re-weigh existing fits' mixtures so the model's output stays close to the stock model's."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnc.cli.corpus_args import add_corpus_arguments, load_model_and_windows, user_errors


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="tune the mixture weights of replaced heads jointly on the model's loss (KL to the stock model)",
        description="Tune the heads named by --heads jointly: their mixtures' weights are fitted by autograd "
                    "so that, with all of them replaced, the model's next-token distribution stays close to "
                    "the stock model's on fit windows; the result is re-scored on held-out windows "
                    "(perplexity and IoU, before and after) and written as DIR/fits.json and DIR/tune.json.",
    )
    add_corpus_arguments(parser)
    parser.add_argument("--lib", required=True, help="compiled program library (attnc compile)")
    parser.add_argument("--fits", required=True, type=Path, help="fits.json to start from (attnc fit or a study's)")
    parser.add_argument("--heads", required=True, help="heads replaced (and tuned) together, e.g. 3.1,4.0,12.7")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--steps", type=int, default=30, help="Adam steps (default: 30)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate on the weights' logits (default: 0.1)")
    parser.add_argument("--fit-windows", type=int, default=8, help="fit windows tuned on (default: 8)")
    parser.add_argument("--heldout-windows", type=int, default=16,
                        help="held-out windows the result is re-scored on (default: 16; 0: none)")
    parser.add_argument("--constants", action="store_true",
                        help="also tune each head's main programs' numeric constants (a private copy per head), "
                             "written as new programs to DIR/programs/ and compiled with the library into DIR/lib")
    parser.add_argument("--constants-lr", type=float, default=0.03,
                        help="learning rate on program constants (default: 0.03)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from attnc.runtime.library import load_library
    from attnc.runtime.replacement import ReplacementError
    from attnc.runtime.store import write_json_atomic
    from attnc.study.tune_run import parse_head_list, run_tune

    try:
        heads = parse_head_list(args.heads)
        fits = json.loads(args.fits.read_text())
        _, loaded, windows = load_model_and_windows(args)
        library = load_library(args.lib, vocab=loaded.vocab)
        fit_ids = windows.ids[windows.fit_indices[:args.fit_windows]]
        heldout_ids = windows.ids[windows.heldout_indices[:args.heldout_windows]]
        note = (f"tuned by attnc tune on {len(fit_ids)} fit windows of {args.corpus} "
                f"({args.window} tokens, split seed {args.seed}), {len(heads)} heads replaced together")
        document, report, sources = run_tune(
            loaded, library, fits, heads, fit_ids, heldout_ids, steps=args.steps, lr=args.lr,
            batch_size=min(args.batch_size, 4), progress=not args.json, constants=args.constants,
            constants_lr=args.constants_lr, note=note)
    except (*user_errors(), ReplacementError, json.JSONDecodeError) as error:
        print(f"attnc tune: error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if sources:
        report["library"] = str(_write_programs(args.out, library, sources))
    write_json_atomic(args.out / "fits.json", document)
    write_json_atomic(args.out / "tune.json", report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"tuned {len(report['heads'])} heads on {report['n_windows']} fit windows ({len(report['history'])} steps): "
              f"KL {report['kl_start']:.4f} -> {report['kl_end']:.4f} nats per token")
        if report.get("stopped"):
            print(f"stopped early: {report['stopped']}")
        if report.get("untunable"):
            print(f"kept as they were (one candidate, nothing to tune): {', '.join(report['untunable'])}")
        held = report.get("heldout")
        if held:
            print(f"held-out ({held['tokens']} tokens): perplexity {held['ppl_stock']:.3f} stock, "
                  f"{held['ppl_start']:.3f} ({held['ppl_increase_pct_start']:+.1f}%) before, "
                  f"{held['ppl_tuned']:.3f} ({held['ppl_increase_pct_tuned']:+.1f}%) tuned; "
                  f"mean IoU {held['mean_iou_start']:.3f} -> {held['mean_iou_tuned']:.3f}")
        if report.get("constants"):
            print(f"constants tuned for {len(report['constants'])} (head, program) pairs: new programs in "
                  f"{args.out / 'programs'}, compiled with the library into {report['library']} "
                  f"(use --lib {report['library']} with this fits.json)")
        for name, why in sorted(report.get("not_tunable", {}).items()):
            print(f"  constants kept: {why}")
        print(f"wrote {args.out / 'fits.json'} and {args.out / 'tune.json'}")
    return 0


def _write_programs(out: Path, library, sources: dict[str, str]) -> Path:
    """DIR/programs/<name>.py for each tuned program, and DIR/lib: the library's sources plus them."""
    from attnc.compiler.library_build import build_library
    from attnc.compiler.library_format import SOURCES_DIR
    from attnc.synth.offline_emit import write_atomic

    programs = out / "programs"
    for name, text in sources.items():
        write_atomic(programs, f"{name}.py", text)
    report = build_library([Path(library.path) / SOURCES_DIR, programs], out / "lib")
    failed = [r.name for r in report.failed if r.name in sources]
    if failed:
        raise SystemExit(f"attnc tune: error: tuned programs failed to compile: {', '.join(failed)}")
    return out / "lib"
