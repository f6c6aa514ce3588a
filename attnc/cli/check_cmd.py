"""`attnc check PATH... [--run] [--json]`: validate (and optionally run) programs."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from attnc.authoring.properties import BACKENDS, DEFAULT_EXAMPLES
from attnc.dsl import ProgramError, ProgramRuntimeError, iter_program_files, load_program, run_reference
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS


def register(subparsers) -> None:
    parser = subparsers.add_parser("check", help="validate program files (and run them on sample windows)",
                                   description="Validate program files against the attnc program language.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="program files or directories of *.py")
    parser.add_argument("--run", action="store_true", help="also run each program on built-in sample windows")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    props = parser.add_argument_group("property tests (--props; attnc/authoring/properties.py)")
    props.add_argument("--props", action="store_true",
                       help="property-test each program on generated windows (shrunk counterexample on failure)")
    props.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, metavar="N",
                       help=f"generated windows per program (default {DEFAULT_EXAMPLES}; edge cases come on top)")
    props.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    props.add_argument("--model", default=None, metavar="M",
                       help="draw ids from this model's vocabulary (default: a built-in byte-level vocab)")
    props.add_argument("--backends", default=",".join(BACKENDS), metavar="B,...",
                       help=f"compiled backends compared with the reference (default {','.join(BACKENDS)})")
    parser.set_defaults(func=handle)


def _contract_problems(matrix: np.ndarray, n: int) -> list[str]:
    problems = []
    if matrix.shape != (n, n):
        problems.append(f"shape {matrix.shape}, expected ({n}, {n})")
        return problems
    if not np.isfinite(matrix).all():
        problems.append("non-finite values")
    if (matrix < 0).any():
        problems.append("negative values")
    if not np.allclose(matrix.sum(axis=1), 1.0):
        problems.append("rows do not sum to 1")
    if np.triu(matrix, 1).any():
        problems.append("weights on future positions")
    return problems


def check_paths(paths: list[str], run: bool = False) -> dict:
    """Check every program file under `paths`; returns the JSON-able summary."""
    files = iter_program_files(paths)
    errors: list[dict] = []
    ok = 0
    for path in files:
        try:
            program = load_program(path)
        except ProgramError as exc:
            errors.extend(d.to_dict() for d in exc.diagnostics)
            continue
        failed = False
        if run:
            for sample, ids in SAMPLE_WINDOWS.items():
                try:
                    where = None
                    matrix = run_reference(program, ids, SAMPLE_VOCAB)
                    problems = _contract_problems(matrix, len(ids))
                    message = "; ".join(problems)
                except ProgramRuntimeError as exc:
                    message = str(exc)
                    where = exc.line
                if message:
                    failed = True
                    line = where or program.entry.lineno
                    errors.append({"path": str(path), "line": line, "col": 1, "rule": "run",
                                   "message": f"on sample window {sample!r}: {message}",
                                   "hint": "run it with attnc.dsl.run_reference to debug"})
                    break
        ok += not failed
    return {"files": len(files), "ok": ok, "failed": len(files) - ok, "errors": errors, "ran": run}


def handle_props(args: argparse.Namespace) -> int:
    """`check --props`: property tests (attnc.authoring.properties), one line per program."""
    from attnc.authoring.properties import check_properties

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        print(f"attnc check: error: unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}",
              file=sys.stderr)
        return 2
    if args.examples < 1:
        print(f"attnc check: error: --examples must be at least 1, got {args.examples}", file=sys.stderr)
        return 2
    vocab = None
    if args.model:
        from attnc.runtime.models import load_model

        vocab = load_model(args.model).vocab
    reports = check_properties(args.paths, vocab, examples=args.examples, seed=args.seed, backends=backends)
    failed = sum(not r.ok for r in reports)
    if args.json:
        print(json.dumps({"files": len(reports), "ok": len(reports) - failed, "failed": failed,
                          "reports": [r.to_dict() for r in reports]}, indent=2))
    else:
        for r in reports:
            print(r.message())
        print(f"{len(reports)} file(s) property-tested: {len(reports) - failed} ok, {failed} failed",
              file=sys.stderr if failed else sys.stdout)
    return 0 if failed == 0 and reports else 1


def handle(args: argparse.Namespace) -> int:
    if getattr(args, "props", False):
        return handle_props(args)
    report = check_paths(args.paths, run=args.run)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for e in report["errors"]:
            line = f"{e['path']}:{e['line']}:{e['col']}: error: {e['message']} [{e['rule']}]"
            print(line + (f"; hint: {e['hint']}" if e["hint"] else ""))
        checked = "checked and ran" if args.run else "checked"
        print(f"{report['files']} file(s) {checked}: {report['ok']} ok, {report['failed']} rejected, "
              f"{len(report['errors'])} problem(s)", file=sys.stderr if report["failed"] else sys.stdout)
    return 0 if report["failed"] == 0 and report["files"] > 0 else 1


def main(argv: list[str] | None = None) -> int:
    """Run `check` alone (works even when other subcommands are not installed)."""
    parser = argparse.ArgumentParser(prog="attnc check")
    sub = parser.add_subparsers()
    register(sub)
    return handle(parser.parse_args(["check", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
