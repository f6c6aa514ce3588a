"""`attnc show PROGRAM --model M --head L.H --text "..." [--out PNG]`: a program next to a real head."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnc.authoring.render import render_png, render_text
from attnc.authoring.show import compare_with_head
from attnc.authoring.skeleton import AuthoringError, resolve_program
from attnc.dsl import ProgramError, ProgramRuntimeError, load_program
from attnc.runtime.heads import parse_head
from attnc.runtime.models import DEFAULT_MODEL, ModelLoadError, ModelNotFoundError, load_model


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "show", help="render a program's matrix next to a head's real attention, with the IoU",
        description="Tokenize TEXT with the model's tokenizer (no special tokens), run the model once for the "
                    "head and the program on the same tokens, print both (a shaded grid up to 40 tokens, "
                    "else each row's top keys) and the IoU, and optionally write PNG heatmaps.")
    parser.add_argument("program", metavar="PROGRAM", help="program file, or a name in programs/")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or path (default {DEFAULT_MODEL})")
    parser.add_argument("--head", required=True, metavar="L.H", help="the head, zero-based layer.head, e.g. 3.7")
    parser.add_argument("--text", required=True, help="the text to show")
    parser.add_argument("--out", type=Path, metavar="PNG", help="write the heatmaps to this PNG file")
    parser.add_argument("--json", action="store_true", help="print the IoU and tokens as JSON instead of text")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        head = parse_head(args.head)
        program = load_program(resolve_program(args.program))
        loaded = load_model(args.model)
        comparison = compare_with_head(program, loaded, head, args.text)
    except ProgramError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (AuthoringError, ValueError, ProgramRuntimeError, ModelNotFoundError, ModelLoadError) as exc:
        print(f"attnc show: error: {exc}", file=sys.stderr)
        return 1
    png = render_png(comparison, args.out) if args.out else None
    if args.json:
        print(json.dumps({**comparison.to_dict(), "png": str(png) if png else None}, indent=2))
    else:
        print(render_text(comparison))
        if png:
            print(f"wrote {png}")
    return 0
