"""`attnc new NAME [--like PROGRAM] [--form native|paper] [--out DIR]`: start a program."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnc.authoring.skeleton import DEFAULT_PROGRAMS_DIR, FORMS, AuthoringError, new_program


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "new", help="write a commented program skeleton (or a renamed copy of a program)",
        description="Write OUT/NAME.py: a commented, valid program to edit (native form by default), or with "
                    "--like a copy of another program with its entry point renamed. Never overwrites a file.")
    parser.add_argument("name", metavar="NAME", help="the program's name (entry function and file name)")
    parser.add_argument("--like", metavar="PROGRAM", help=f"start from this program (a path, or a name in "
                                                           f"{DEFAULT_PROGRAMS_DIR}/)")
    parser.add_argument("--form", choices=FORMS, default="native", help="skeleton form (default native)")
    parser.add_argument("--out", type=Path, default=DEFAULT_PROGRAMS_DIR, metavar="DIR",
                        help=f"directory to write into (default {DEFAULT_PROGRAMS_DIR}/)")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        path = new_program(args.name, out_dir=args.out, form=args.form, like=args.like)
    except AuthoringError as exc:
        print(f"attnc new: error: {exc}", file=sys.stderr)
        return 1
    origin = f"a copy of {args.like}" if args.like else f"a {args.form}-form skeleton"
    print(f"wrote {path} ({origin}); next: edit it, then `attnc check --props {path}`")
    return 0
