"""`attnc bench NAME [options]`: run one of the benchmarks in benchmarks/.

A thin dispatcher: the options after NAME go to that benchmark's own
`main(argv)` (`attnc bench NAME --help` lists them). Every benchmark measures
the variants it compares side by side in one run and records the machine;
`--json` prints one JSON object, `--out FILE` writes it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

#: Benchmark name -> (module, one-line description).
BENCHMARKS = {
    "heads": ("benchmarks.heads_bench", "head cost: one layer and whole-model throughput, neural vs program heads"),
    "scaling": ("benchmarks.scaling_bench", "scoring/compile time vs programs, window length, heads; growth exponents"),
    "anchor": ("benchmarks.anchor_bench", "the paper's per-unit scoring vs attnc's scorer on the same slice"),
    "compile": ("benchmarks.compile_bench", "compiled programs vs the reference interpreter; a 1,000-program library"),
    "compile-cold": ("benchmarks.compile_cold_bench", "cold `attnc compile` of 500 LLM-style paper-form loop programs"),
    "scoring": ("benchmarks.scoring_bench", "reference IoU vs the fast scoring path"),
    "scale": ("benchmarks.scale_bench", "extraction and scoring on 1 vs 2 workers; a cost model of the paper's scale"),
}


def register(subparsers) -> None:
    listing = "\n".join(f"  {name:<12} {text}" for name, (_, text) in BENCHMARKS.items())
    parser = subparsers.add_parser(
        "bench", help="run a benchmark (heads, scaling, anchor, compile, compile-cold, scoring, scale)",
        description=f"Run a benchmark; options after NAME go to it (attnc bench NAME --help).\n\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=sorted(BENCHMARKS), metavar="NAME", help="which benchmark")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    parser.set_defaults(func=run_bench)


def run_bench(args) -> int:
    module_name, _ = BENCHMARKS[args.name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in ("benchmarks", module_name):
            raise
        print(f"attnc bench {args.name}: cannot import {module_name} ({error}); the benchmarks ship with the "
              "attnc source tree - run from a checkout (`python -m attnc bench ...` in its root) or install "
              "it with the benchmarks package", file=sys.stderr)
        return 2
    return call_main(module, args.options, prog=f"attnc bench {args.name}")


def call_main(module, argv: list[str], prog: str) -> int:
    """Call `module.main(argv)`; a main() without parameters reads sys.argv, so that is set for it."""
    main = module.main
    if inspect.signature(main).parameters:
        return int(main(list(argv)) or 0)
    saved = sys.argv
    sys.argv = [prog, *argv]
    try:
        return int(main() or 0)
    finally:
        sys.argv = saved
