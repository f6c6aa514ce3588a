"""The `attnc` command line: a thin layer over the Python API.

Each subcommand lives in its own module here and exposes
`register(subparsers)`, which adds its parser and sets `func` to a handler
`(args) -> int` (the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from attnc import __version__

#: Subcommand modules, in the order `attnc --help` lists them.
COMMAND_MODULES = (
    "attnc.cli.check_cmd",
    "attnc.cli.new_cmd",
    "attnc.cli.show_cmd",
    "attnc.cli.compile_cmd",
    "attnc.cli.extract_cmd",
    "attnc.cli.score_cmd",
    "attnc.cli.fit_cmd",
    "attnc.cli.eval_cmd",
    "attnc.cli.tune_cmd",
    "attnc.cli.synth_cmd",
    "attnc.cli.bench_cmd",
    "attnc.cli.study_cmd",
    "attnc.cli.explore_cmd",
    "attnc.cli.demo_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnc",
        description="Explain transformer attention heads with small, safe, executable programs.",
    )
    parser.add_argument("--version", action="version", version=f"attnc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
