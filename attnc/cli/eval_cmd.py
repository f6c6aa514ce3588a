"""`attnc eval ppl|qa`: perplexity and QA accuracy, stock or with program heads.

With `--fits FITS --lib LIB`, the heads listed in the fits file are replaced by
their programs from the compiled library (see attnc.runtime.surrogate) before
evaluating; without them the stock model is evaluated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnc.cli.corpus_args import add_corpus_arguments, add_model_arguments, load_model_and_windows


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="perplexity or QA accuracy, stock or with program heads")
    commands = parser.add_subparsers(dest="eval_command", metavar="WHAT", required=True)

    ppl = commands.add_parser("ppl", help="token-weighted perplexity on corpus windows")
    add_corpus_arguments(ppl)
    _common(ppl)
    ppl.add_argument("--split", choices=("heldout", "fit", "all"), default="heldout", help="windows to evaluate")
    ppl.set_defaults(func=run_ppl)

    qa = commands.add_parser("qa", help="multiple-choice accuracy (PIQA, SocialIQA)")
    add_model_arguments(qa)
    _common(qa)
    qa.add_argument("--task", choices=("piqa", "socialiqa"), required=True)
    qa.add_argument("--data", required=True, help="the task's jsonl file")
    qa.add_argument("--limit", type=int, default=None, help="evaluate the first K valid items")
    qa.set_defaults(func=run_qa)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fits", help="fits.json: heads to replace by programs (needs --lib)")
    parser.add_argument("--lib", help="compiled program library directory")
    parser.add_argument("--heads", help="replace only these heads, e.g. 0.1,3.7 (default: all in --fits)")
    parser.add_argument("--use", choices=("best", "mixture", "faithful"), default="best",
                        help="best program, IoU-fitted mixture, or faithful (tuned) mixture")
    parser.add_argument("--on-program-error", choices=("fail", "neural"), default="fail",
                        help="a failing program stops the run (fail) or its head uses stock attention (neural)")
    parser.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa",
                        help="stock attention implementation the model runs (and surrogates wrap); default sdpa")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


class _UsageError(Exception):
    """A problem with the command line or its inputs, reported without a traceback."""


def _install(args, loaded):
    """Install surrogates from --fits/--lib; returns the handle or None."""
    if not args.fits and not args.lib:
        if args.heads:
            raise _UsageError("--heads needs --fits and --lib")
        return None
    if not (args.fits and args.lib):
        raise _UsageError("--fits and --lib go together")
    from attnc.runtime.replacement import ReplacementMap
    from attnc.runtime.surrogate import install_surrogates

    try:
        fits = json.loads(Path(args.fits).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise _UsageError(f"--fits {args.fits}: {error}") from error
    heads = [h.strip() for h in args.heads.split(",") if h.strip()] if args.heads else None
    replacement = ReplacementMap.from_fits(fits, heads=heads, use=args.use)
    replacement.validate_for(loaded)
    source = _load_source(args.lib, loaded)
    return install_surrogates(loaded, source, replacement, on_program_error=args.on_program_error)


def _load_source(lib: str, loaded):
    from attnc.runtime import library

    source = library.load_library(lib, vocab=loaded.vocab)
    if not hasattr(source, "matrices"):
        raise _UsageError(f"--lib {lib}: the loaded library has no matrices(names, ids) method")
    return source


def _emit(args, result: dict, text: str) -> None:
    print(json.dumps(result, indent=2) if args.json else text)


def _surrogate_record(handle) -> dict:
    if handle is None:
        return {"replaced_heads": {}}
    return {
        "replaced_heads": handle.replacement.to_json(),
        "on_program_error": handle.on_program_error,
        "fallbacks": {f"{p}@{h}": n for (p, h), n in sorted(handle.fallbacks.items())},
        "program_failures": len(handle.failures),
    }


def run_ppl(args) -> int:
    from attnc.cli.corpus_args import user_errors
    from attnc.runtime.perplexity import perplexity

    try:
        _, loaded, windows = load_model_and_windows(args, attn_implementation=args.attn)
        ids = windows.ids[windows.indices(args.split)]
        if len(ids) == 0:
            raise _UsageError(f"the {args.split} split has no windows; change --heldout-fraction or --split")
        handle = _install(args, loaded)
        try:
            result = perplexity(loaded, ids, batch_size=args.batch_size, surrogate=handle, progress=not args.json)
        finally:
            if handle is not None:
                handle.remove()
    except (_UsageError, OSError, RuntimeError, *user_errors()) as error:
        print(f"attnc eval ppl: {error}", file=sys.stderr)
        return 1
    record = {
        **result.to_json(),
        "model": loaded.name,
        "split": args.split,
        "windows": {k: v for k, v in windows.describe().items() if k != "heldout_indices"},
        **_surrogate_record(handle),
    }
    _emit(args, record, f"perplexity {result.ppl:.4f} on {result.tokens_evaluated} tokens "
                        f"({result.n_windows} {args.split} windows of {args.window}) in {result.seconds:.1f}s")
    return 0


def run_qa(args) -> int:
    from attnc.runtime.models import load_model
    from attnc.runtime.qa import qa_accuracy

    try:
        loaded = load_model(args.model, attn_implementation=args.attn)
        handle = _install(args, loaded)
        try:
            result = qa_accuracy(loaded, args.task, args.data, limit=args.limit, batch_size=args.batch_size,
                                 surrogate=handle, progress=not args.json)
        finally:
            if handle is not None:
                handle.remove()
    except (_UsageError, OSError, ValueError, RuntimeError) as error:
        print(f"attnc eval qa: {error}", file=sys.stderr)
        return 1
    record = {**result.to_json(), "model": loaded.name, **_surrogate_record(handle)}
    _emit(args, record, f"{args.task}: acc {result.acc:.4f}, acc_norm {result.acc_norm:.4f} on {result.n} items "
                        f"({result.skipped} skipped) in {result.seconds:.1f}s")
    return 0
