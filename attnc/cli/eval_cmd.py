"""`attnc eval ppl|qa|harness`: perplexity and QA accuracy, stock or with program heads.

With `--fits FITS --lib LIB`, the heads listed in the fits file are replaced by
their programs from the compiled library (see attnc.runtime.surrogate) before
evaluating; without them the stock model is evaluated. `qa` is attnc's own
harness (attnc.runtime.qa); `harness` runs lm-evaluation-harness on local
files (attnc.runtime.harness, `pip install 'attnc[harness]'`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnc.cli.corpus_args import add_corpus_arguments, add_model_arguments, load_model_and_windows
from attnc.cli.parallel_args import add_parallel_arguments, pool_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="perplexity or QA accuracy, stock or with program heads")
    commands = parser.add_subparsers(dest="eval_command", metavar="WHAT", required=True)

    ppl = commands.add_parser("ppl", help="token-weighted perplexity on corpus windows")
    add_corpus_arguments(ppl)
    _common(ppl)
    ppl.add_argument("--split", choices=("heldout", "fit", "all"), default="heldout", help="windows to evaluate")
    add_parallel_arguments(ppl, default="one, this process")
    ppl.set_defaults(func=run_ppl)

    qa = commands.add_parser("qa", help="multiple-choice accuracy (PIQA, SocialIQA)")
    add_model_arguments(qa)
    _common(qa)
    qa.add_argument("--task", choices=("piqa", "socialiqa"), required=True)
    qa.add_argument("--data", required=True, help="the task's jsonl file")
    qa.add_argument("--limit", type=int, default=None, help="evaluate the first K valid items")
    add_parallel_arguments(qa, what="the answer choices' batches", default="one, this process")
    qa.set_defaults(func=run_qa)

    harness = commands.add_parser("harness", help="PIQA / SocialIQA through lm-evaluation-harness, on local files")
    add_model_arguments(harness)
    _common(harness)
    harness.add_argument("--tasks", default="piqa,social_iqa", help="comma-separated: piqa, social_iqa (default: both)")
    harness.add_argument("--data", action="append", default=[], metavar="TASK=FILE",
                         help="a task's jsonl file (repeatable); default: the file for it in --data-dir")
    harness.add_argument("--data-dir", type=Path, default=Path("../shared/data/qa"),
                         help="where piqa-dev.jsonl and socialiqa-dev.jsonl are (default: ../shared/data/qa)")
    harness.add_argument("--fraction", type=float, default=None,
                         help="replace this share of the model's heads: the fits heads with the highest held-out IoU")
    harness.add_argument("--limit", type=int, default=None, help="evaluate the first K items of each task")
    harness.add_argument("--compare", action="store_true",
                         help="also score the same items with attnc's own harness (eval qa) and compare item by item")
    harness.set_defaults(func=run_harness)


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
    """Install surrogates from --fits/--lib (and --heads or --fraction); returns the handle or None."""
    return _install_chosen(args, loaded, _replacement(args, loaded))


def _install_chosen(args, loaded, chosen):
    """Install `_replacement`'s choice (None: nothing); the handle or None."""
    from attnc.runtime.surrogate import install_surrogates

    if chosen is None:
        return None
    replacement, source = chosen
    return install_surrogates(loaded, source, replacement, on_program_error=args.on_program_error)


def _replacement(args, loaded):
    """(ReplacementMap, loaded library) from --fits/--lib (and --heads or --fraction), checked; None: stock."""
    fraction = getattr(args, "fraction", None)
    if not args.fits and not args.lib:
        if args.heads or fraction is not None:
            raise _UsageError(f"{'--heads' if args.heads else '--fraction'} needs --fits and --lib")
        return None
    if not (args.fits and args.lib):
        raise _UsageError("--fits and --lib go together")
    from attnc.runtime.replacement import ReplacementMap

    try:
        fits = json.loads(Path(args.fits).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise _UsageError(f"--fits {args.fits}: {error}") from error
    heads = [h.strip() for h in args.heads.split(",") if h.strip()] if args.heads else None
    if fraction is not None:
        if heads:
            raise _UsageError("give --heads or --fraction, not both")
        heads = _heads_for_fraction(fits, fraction, loaded.n_layers * loaded.n_heads, args.use)
        if not heads:
            return None
    replacement = ReplacementMap.from_fits(fits, heads=heads, use=args.use)
    replacement.validate_for(loaded)
    return replacement, _load_source(args.lib, loaded)


def _heads_for_fraction(fits: dict, fraction: float, n_model_heads: int, use: str) -> list[str]:
    """The round(fraction x model heads) heads of `fits` with the highest held-out IoU of what `use` installs."""
    from attnc.study.attribution import order_by_iou
    from attnc.study.sweep import heads_for_fraction

    try:
        count = heads_for_fraction(fraction, n_model_heads)
    except ValueError as error:
        raise _UsageError(f"--fraction: {error}") from error
    entries = fits.get("heads") if isinstance(fits.get("heads"), dict) else {}
    keys = {"best": (), "mixture": ("mixture",), "faithful": ("tuned", "faithful", "mixture")}[use]
    iou = {}
    for name, entry in entries.items():
        chosen = next((entry[k] for k in keys if isinstance(entry.get(k), dict)), entry)
        iou[name] = float(chosen.get("iou_heldout", entry.get("iou_heldout", 0.0)) or 0.0)
    if count > len(iou):
        raise _UsageError(f"--fraction {fraction} replaces {count} of {n_model_heads} heads, "
                          f"but the fits file has only {len(iou)}")
    return order_by_iou(iou)[:count]


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
    return _replacement_record(handle.replacement, handle.on_program_error, handle.fallbacks, handle.failures)


def _replacement_record(replacement, on_program_error: str, fallbacks: dict, failures: list) -> dict:
    return {
        "replaced_heads": replacement.to_json(),
        "on_program_error": on_program_error,
        "fallbacks": {f"{p}@{h}": n for (p, h), n in sorted(fallbacks.items())},
        "program_failures": len(failures),
    }


def _evaluate(args, loaded, single, pooled):
    """Run the evaluation here or on the workers of --workers/--ray; (result, surrogate record dict, workers).

    `single(handle)` runs in this process with the surrogates installed (handle None: stock);
    `pooled(pool, spec)` runs shards on the pool, each worker installing `spec`
    (`attnc.parallel.shard_worker.Surrogates`, None: stock) on its own model. The
    record is the handle, or what the workers' surrogates saw; workers is None here.
    """
    from attnc.parallel.shard_worker import Surrogates

    chosen = _replacement(args, loaded)  # checked before any worker starts
    pool = pool_from_args(args, args.model, loaded, default_workers=1, attn_implementation=args.attn)
    if pool is None:
        handle = _install_chosen(args, loaded, chosen)
        try:
            return single(handle), _surrogate_record(handle), None
        finally:
            if handle is not None:
                handle.remove()
    try:
        spec = None if chosen is None else Surrogates(Path(args.lib), chosen[0], args.on_program_error)
        done = pooled(pool, spec)
        record = (_surrogate_record(None) if chosen is None else
                  _replacement_record(chosen[0], args.on_program_error, done.fallbacks, done.failures))
        return done.result, record, pool.workers
    finally:
        pool.close()


def run_ppl(args) -> int:
    from attnc.cli.corpus_args import user_errors
    from attnc.runtime.perplexity import perplexity, perplexity_on_pool

    try:
        _, loaded, windows = load_model_and_windows(args, attn_implementation=args.attn)
        ids = windows.ids[windows.indices(args.split)]
        if len(ids) == 0:
            raise _UsageError(f"the {args.split} split has no windows; change --heldout-fraction or --split")
        result, replaced, workers = _evaluate(
            args, loaded,
            lambda handle: perplexity(loaded, ids, batch_size=args.batch_size, surrogate=handle,
                                      progress=not args.json),
            lambda pool, spec: perplexity_on_pool(pool, ids, batch_size=args.batch_size, surrogates=spec))
    except (_UsageError, OSError, RuntimeError, *user_errors()) as error:
        print(f"attnc eval ppl: {error}", file=sys.stderr)
        return 1
    record = {
        **result.to_json(),
        "model": loaded.name,
        "split": args.split,
        "windows": {k: v for k, v in windows.describe().items() if k != "heldout_indices"},
        **replaced,
        **({"workers": workers} if workers else {}),
    }
    _emit(args, record, f"perplexity {result.ppl:.4f} on {result.tokens_evaluated} tokens "
                        f"({result.n_windows} {args.split} windows of {args.window}) in {result.seconds:.1f}s")
    return 0


def run_qa(args) -> int:
    from attnc.runtime.models import load_model
    from attnc.runtime.qa import qa_accuracy, qa_accuracy_on_pool

    try:
        loaded = load_model(args.model, attn_implementation=args.attn)
        result, replaced, workers = _evaluate(
            args, loaded,
            lambda handle: qa_accuracy(loaded, args.task, args.data, limit=args.limit, batch_size=args.batch_size,
                                       surrogate=handle, progress=not args.json),
            lambda pool, spec: qa_accuracy_on_pool(pool, loaded, args.task, args.data, limit=args.limit,
                                                   batch_size=args.batch_size, surrogates=spec))
    except (_UsageError, OSError, ValueError, RuntimeError) as error:
        print(f"attnc eval qa: {error}", file=sys.stderr)
        return 1
    record = {**result.to_json(), "model": loaded.name, **replaced, **({"workers": workers} if workers else {})}
    _emit(args, record, f"{args.task}: acc {result.acc:.4f}, acc_norm {result.acc_norm:.4f} on {result.n} items "
                        f"({result.skipped} skipped) in {result.seconds:.1f}s")
    return 0


def _data_files(args) -> dict[str, Path]:
    """task -> jsonl file, from --tasks, --data TASK=FILE and --data-dir."""
    from attnc.runtime.harness import task_name

    try:
        tasks = [task_name(t) for t in args.tasks.split(",") if t.strip()]
        given = {}
        for text in args.data:
            task, sep, path = text.partition("=")
            if not sep or not path:
                raise _UsageError(f"--data {text!r}: expected TASK=FILE, e.g. piqa=../shared/data/qa/piqa-dev.jsonl")
            given[task_name(task)] = Path(path)
    except ValueError as error:
        raise _UsageError(str(error)) from error
    if not tasks:
        raise _UsageError("--tasks names no task")
    default_files = {"piqa": "piqa-dev.jsonl", "social_iqa": "socialiqa-dev.jsonl"}
    files = {task: given.get(task, args.data_dir / default_files[task]) for task in tasks}
    missing = [f"{task}: {path}" for task, path in files.items() if not path.is_file()]
    if missing:
        raise _UsageError(f"no such data file ({'; '.join(missing)}); pass --data TASK=FILE or --data-dir DIR")
    return files


def run_harness(args) -> int:
    from attnc.runtime.harness import HarnessMissingError, compare_to_attnc, require_lm_eval, run_harness
    from attnc.runtime.models import load_model

    try:
        files = _data_files(args)
        require_lm_eval()  # before the model loads: a missing extra fails fast
        loaded = load_model(args.model, attn_implementation=args.attn)
        handle = _install(args, loaded)
        try:
            result = run_harness(loaded, files, limit=args.limit, batch_size=args.batch_size, surrogate=handle,
                                 keep_samples=args.compare, progress=not args.json)
            comparisons = compare_to_attnc(loaded, result, batch_size=args.batch_size) if args.compare else {}
        finally:
            if handle is not None:
                handle.remove()
    except (_UsageError, HarnessMissingError, OSError, ValueError, RuntimeError) as error:
        print(f"attnc eval harness: {error}", file=sys.stderr)
        return 1
    record = {**result.to_json(), "model": loaded.name, "fraction": args.fraction, **_surrogate_record(handle)}
    if comparisons:
        record["compare"] = {task: c.to_json() for task, c in comparisons.items()}
    lines = []
    for task, r in result.tasks.items():
        norm = f", acc_norm {r.acc_norm:.4f}" if r.acc_norm is not None else ""
        lines.append(f"{task}: acc {r.acc:.4f} (+-{r.acc_stderr:.4f}){norm} on {r.n} items")
        if task in comparisons:
            c = comparisons[task]
            same = (f"; on the {c.same_prompt} items with identical prompts: lm-eval {c.acc_lm_eval_same:.4f}, "
                    f"attnc {c.acc_attnc_same:.4f}, max |dlogp| {c.max_abs_loglik_diff:.2e}" if c.same_prompt else "")
            lines.append(f"  attnc's own harness: acc {c.acc_attnc:.4f}, same choice on {c.agreement:.1%} "
                         f"({c.difference}){same}")
    lines.append(f"{len(record['replaced_heads'])} heads replaced; lm-eval {result.lm_eval_version}, "
                 f"{result.seconds:.1f}s")
    _emit(args, record, "\n".join(lines))
    return 0
