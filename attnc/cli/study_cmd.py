"""`attnc study`: compile -> extract -> score -> fit -> replacement sweep, into a report directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnc.cli.corpus_args import add_corpus_arguments, user_errors
from attnc.cli.parallel_args import add_parallel_arguments, pool_from_args
from attnc.runtime.precision import PRECISIONS


def parse_fractions(text: str) -> tuple[float, ...]:
    """"0,0.1,0.25" -> (0.0, 0.1, 0.25); argparse reports a ValueError as a usage error."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected decimals separated by commas, e.g. 0,0.1,0.25") from None


def parse_names(text: str) -> tuple[str, ...]:
    """"a,b" -> ("a", "b"); "none" -> ()."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return () if names == ("none",) else names


def parse_qa(text: str) -> tuple[str, Path]:
    """"piqa=FILE" -> ("piqa", Path(FILE))."""
    task, sep, path = text.partition("=")
    if not sep or not task or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TASK=FILE, e.g. piqa=../shared/data/qa/piqa-dev.jsonl")
    return task.strip().lower(), Path(path)


def add_study_arguments(parser: argparse.ArgumentParser, *, out_default: Path | None = None) -> None:
    """The options of `attnc study` after the model/corpus ones (shared with `attnc demo`)."""
    parser.add_argument("--programs", type=Path, nargs="+", default=[Path("programs")],
                        help="program files or directories, searched recursively (default: programs)")
    parser.add_argument("--out", required=out_default is None, type=Path, default=out_default,
                        help="report directory (results.json, CSVs, plots, report.md)"
                             + (f"; default: {out_default}" if out_default else ""))
    parser.add_argument("--cache", type=Path, default=None, help="stage cache directory (default: OUT/cache)")
    parser.add_argument("--precision", default=PRECISIONS[0], choices=PRECISIONS,
                        help="what the model's forward passes compute in: float32 (default), or bfloat16 autocast "
                             "(about 2x faster on CPUs with AVX512-BF16/AMX; figures then carry bfloat16 rounding)")
    parser.add_argument("--backend", default="auto", choices=("auto", "numpy", "numba", "torch", "interpreted"),
                        help="compiler backend (default: auto)")
    parser.add_argument("--mixtures", type=int, default=3, metavar="K",
                        help="fit mixtures of up to K programs per head; 0 or 1: single programs only (default: 3)")
    parser.add_argument("--mixture-candidates", type=int, default=6, help="top programs per head tried in a mixture")
    parser.add_argument("--mixture-search-windows", type=int, default=32, help="fit windows the mixture weights are searched on")
    parser.add_argument("--tolerance", type=float, default=0.01, help="selected library's allowed held-out IoU shortfall")
    parser.add_argument("--fractions", type=parse_fractions, default=None,
                        help="shares of heads replaced in the sweep (default: 0,0.1,0.25,0.5,0.75,1)")
    parser.add_argument("--order", choices=("kl", "measured", "loss", "iou"), default="kl",
                        help="replace heads by the KL(stock || replaced) each causes alone, measured on a few fit "
                             "windows (kl, default), by their loss change when replaced alone, measured the same "
                             "way (measured), by the loss change's first-order estimate (loss), or by held-out "
                             "IoU (iou)")
    parser.add_argument("--use", choices=("faithful", "mixture", "best"), default="faithful",
                        help="a replaced head uses its faithful mixture (fitted to the head's output, then tuned on "
                             "the model's loss; default), its IoU-fitted mixture, or its best single program")
    parser.add_argument("--faithful-windows", type=int, default=32,
                        help="fit windows the output fit (and the heads' means) use (default: 32)")
    parser.add_argument("--faithful-candidates", type=int, default=6,
                        help="top programs per head (by fit IoU) the output fit mixes, beside the content-free ones")
    parser.add_argument("--tune-fraction", type=float, default=0.25,
                        help="share of heads (the first of the order) whose weights are tuned jointly (default: 0.25)")
    parser.add_argument("--tune-steps", type=int, default=60,
                        help="Adam steps of the joint tuning (default: 60; 0: no tuning)")
    parser.add_argument("--tune-windows", type=int, default=64,
                        help="fit windows the joint tuning runs on (default: 64)")
    parser.add_argument("--tune-lr", type=float, default=0.1, help="learning rate of the joint tuning (default: 0.1)")
    parser.add_argument("--tune-constants", action=argparse.BooleanOptionalAction, default=True,
                        help="also tune the numeric constants of each tuned head's main programs (new programs, "
                             "one per head; default: on)")
    parser.add_argument("--tune-constants-lr", type=float, default=0.03,
                        help="learning rate on program constants (default: 0.03)")
    parser.add_argument("--baselines", type=parse_names, default=None,
                        help="baselines swept beside the programs, comma-separated: content_free, mean_ablation "
                             "(default: both; 'none': no baseline)")
    parser.add_argument("--impact-windows", type=int, default=None,
                        help="fit windows the loss impact is measured on (default: 8 kl, 4 measured, 32 estimated)")
    parser.add_argument("--measure-heads", type=int, default=None, metavar="N",
                        help="the measured order measures only the N heads the first-order estimate finds "
                             "cheapest (default: --measure-margin times the most heads a sweep, QA or tuning "
                             "point replaces; 0: every head)")
    parser.add_argument("--measure-margin", type=float, default=2.0, metavar="M",
                        help="without --measure-heads, measure M times the most heads replaced (default: 2; "
                             "measured on valid-dev, 1.5 lost 1%% of the best 25%%'s summed impact, 2 none)")
    parser.add_argument("--ppl-windows", type=int, default=None, help="at most K held-out windows per sweep point (default: all)")
    parser.add_argument("--qa", type=parse_qa, action="append", default=[], metavar="TASK=FILE",
                        help="measure TASK (piqa or socialiqa) accuracy at 0%% and 25%% replaced; repeatable")
    parser.add_argument("--qa-limit", type=int, default=500, help="items per QA task (default: 500; 0: all)")
    parser.add_argument("--on-program-error", choices=("fail", "neural"), default="neural",
                        help="a program failing on a window: stop (fail) or use the stock head there and count it")
    parser.add_argument("--plot-heads", type=int, default=3, help="heads drawn neural vs program (default: 3)")
    parser.add_argument("--json", action="store_true", help="print results.json on stdout")
    add_parallel_arguments(parser)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "study",
        help="the whole experiment: compile, extract, score, fit, replacement sweep, report",
        description="Compile the programs, record every head's attention on the corpus windows, score every "
                    "program against every head (fit and held-out), fit programs and mixtures per head, and "
                    "measure held-out perplexity (and QA accuracy) with growing shares of heads replaced. "
                    "Every stage is cached by content hash under OUT/cache: a re-run redoes only what changed.",
    )
    add_corpus_arguments(parser)
    add_study_arguments(parser)
    parser.set_defaults(func=handle)


def config_from_args(args: argparse.Namespace):
    """A StudyConfig from parsed options."""
    from attnc.study.baselines import BASELINES
    from attnc.study.study_run import StudyConfig
    from attnc.study.sweep import DEFAULT_FRACTIONS

    return StudyConfig(
        corpus=args.corpus, out=args.out, programs=list(args.programs), model=args.model, window=args.window,
        mode=args.mode, text_field=args.text_field, heldout_fraction=args.heldout_fraction,
        max_windows=args.max_windows, skip_windows=args.skip_windows, seed=args.seed, batch_size=args.batch_size,
        backend=args.backend, precision=args.precision,
        mixtures=args.mixtures, mixture_candidates=args.mixture_candidates,
        mixture_search_windows=args.mixture_search_windows, tolerance=args.tolerance,
        fractions=args.fractions or DEFAULT_FRACTIONS, order=args.order, use=args.use,
        impact_windows=args.impact_windows, measure_heads=args.measure_heads,
        measure_margin=args.measure_margin, ppl_windows=args.ppl_windows, qa=dict(args.qa),
        qa_limit=args.qa_limit or None, on_program_error=args.on_program_error, plot_heads=args.plot_heads,
        cache=args.cache, progress=not args.json, faithful_windows=args.faithful_windows,
        faithful_candidates=args.faithful_candidates, tune_fraction=args.tune_fraction, tune_steps=args.tune_steps,
        tune_windows=args.tune_windows, tune_lr=args.tune_lr, tune_constants=args.tune_constants,
        tune_constants_lr=args.tune_constants_lr,
        baselines=BASELINES if args.baselines is None else args.baselines,
    )


def run(args: argparse.Namespace, command: str):
    """Run the study for `args`; returns (StudyRun or None, exit status), errors reported on stderr."""
    from attnc.runtime.surrogate import SurrogateError
    from attnc.study.study_run import run_study

    pool = None
    try:
        config = config_from_args(args)
        pool = pool_from_args(args, config.model)
        return run_study(config, pool=pool), 0
    except (*user_errors(), SurrogateError, OSError) as error:
        print(f"attnc {command}: error: {error}", file=sys.stderr)
        return None, 2
    finally:
        if pool is not None:
            pool.close()


def handle(args: argparse.Namespace) -> int:
    import json

    from attnc.study.report import headline_table

    study, status = run(args, "study")
    if study is None:
        return status
    if args.json:
        print(json.dumps(study.results, indent=2))
    else:
        print(headline_table(study.results))
        print(f"report: {study.out / 'report.md'}")
        print(f"explorer: {study.out / 'explorer' / 'index.html'}")
    return 0
