"""`attnc compile PATH... -o LIB [--backend ...] [--jit [N]] [--strict] [--json]`: build a program library.

Compiling JIT-compiles nothing: numba compiles a loop kernel at its first use.
`--jit` compiles them all now instead, in N processes (default: the cores
available), into numba's on-disk cache, so the first scoring run starts warm.
"""

from __future__ import annotations

import argparse
import json
import sys

from attnc.compiler.backend_selection import BACKENDS
from attnc.compiler.jit_warmup import precompile_library
from attnc.compiler.library_build import build_library
from attnc.compiler.library_format import LibraryError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compile", help="compile program files into a library (manifest, sources, kernels)",
        description="Validate and compile programs into a library directory. Programs that fail are "
                    "reported and skipped; --strict makes any failure a non-zero exit.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="program files or directories of *.py")
    parser.add_argument("-o", "--output", required=True, metavar="LIB", help="library directory to write")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="backend for every program (default: auto = numpy, else numba, else interpreted)")
    parser.add_argument("--jit", nargs="?", type=int, const=0, default=None, metavar="N",
                        help="also JIT-compile the loop (numba) kernels now, in N processes (default: all cores), "
                             "into numba's cache; without it they compile at first use")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any program fails")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        report = build_library(args.paths, args.output, backend=args.backend)
    except LibraryError as exc:
        print(f"attnc compile: {exc}", file=sys.stderr)
        return 2
    jit = None
    if args.jit is not None:
        if args.jit < 0:
            print(f"attnc compile: --jit takes a number of processes >= 1, got {args.jit}", file=sys.stderr)
            return 2
        jit = precompile_library(report.path, workers=args.jit or None)
    if args.json:
        print(json.dumps({**report.to_dict(), **({"jit": jit.to_dict()} if jit else {})}, indent=2))
    else:
        for record in report.records:
            status = record.backend if record.status == "ok" else "ERROR"
            extra = f" (duplicate of {record.duplicate_of})" if record.duplicate_of else ""
            print(f"{record.name:32s} {status:12s}{extra}")
            for message in record.messages if record.status != "ok" or record.backend == "interpreted" else ():
                print(f"    {message}")
        ok = len(report.records) - len(report.failed)
        print(f"{ok} compiled, {len(report.failed)} failed -> {report.path} ({report.compile_s:.1f} s)")
        if jit is not None:
            print(f"JIT: {len(jit.compiled)} loop kernels compiled into numba's cache in {jit.seconds:.1f} s "
                  f"({jit.workers} process{'es' if jit.workers > 1 else ''})")
            for name, reason in sorted(jit.failed.items()):
                print(f"    {name}: {reason}")
    if args.strict and report.failed:
        print(f"attnc compile: --strict: {len(report.failed)} program(s) failed", file=sys.stderr)
        return 1
    return 0
