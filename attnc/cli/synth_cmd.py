"""`attnc synth`: write programs for heads, with an LLM (--llm) or offline by search (--offline)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from attnc.cli.corpus_args import add_corpus_arguments, load_model_and_windows, user_errors
from attnc.cli.parallel_args import add_parallel_arguments, pool_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="synthesize programs for heads (LLM over an OpenAI-compatible API, or offline search)",
        description="Record the heads' attention on corpus windows, then either ask an LLM for programs "
                    "(--llm; endpoint from --base-url/OPENAI_BASE_URL, key from OPENAI_API_KEY) or fit "
                    "parameterised templates offline (--offline, the default when no endpoint is configured). "
                    "Accepted programs are validated, scored on fit windows and written atomically to --out.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--llm", action="store_true", help="ask an LLM (OpenAI-compatible chat completions)")
    mode.add_argument("--offline", action="store_true", help="search parameterised templates; needs no LLM")
    add_corpus_arguments(parser)
    parser.add_argument("--heads", default=None, help="heads as layer.head, comma separated (also L.* and all); default all")
    parser.add_argument("--out", required=True, type=Path, help="directory for the accepted programs")
    parser.add_argument("--json", action="store_true", help="print the run's report as JSON")
    llm = parser.add_argument_group("--llm")
    llm.add_argument("--base-url", default=None, help="API root, e.g. http://127.0.0.1:8000/v1 (env OPENAI_BASE_URL)")
    llm.add_argument("--llm-model", default=None, help="the LLM's model name (env ATTNC_LLM_MODEL)")
    llm.add_argument("--candidates", type=int, default=4, help="programs asked for per head and round (default 4)")
    llm.add_argument("--rounds", type=int, default=1, help="2 or more: feed back the best candidate and rejections")
    llm.add_argument("--margin", type=float, default=0.0, help="keep a candidate when fit IoU > current best + margin")
    llm.add_argument("--lib", type=Path, default=None, help="compiled library whose best program per head is the bar to beat")
    llm.add_argument("--max-requests", type=int, default=200, help="HTTP requests per run (default 200)")
    llm.add_argument("--max-tokens", type=int, default=500_000, help="prompt + completion tokens per run")
    llm.add_argument("--max-seconds", type=float, default=3600.0, help="wall time per run")
    llm.add_argument("--completion-tokens", type=int, default=1024,
                     help="most tokens per reply, sent as max_tokens (default 1024)")
    llm.add_argument("--request-timeout", type=float, default=60.0,
                     help="seconds one HTTP request may take (default 60; a small local model on CPU needs more)")
    llm.add_argument("--concurrency", type=int, default=1,
                     help="most requests in flight at once, for different heads (default 1: one at a time); "
                          "the same programs and report as with 1, and --max-requests/--max-tokens still bound the run")
    llm.add_argument("--sample-windows", type=int, default=32, help="fit and held-out windows recorded per split (default 32)")
    offline = parser.add_argument_group("--offline")
    offline.add_argument("--max-programs", type=int, default=1000, help="most programs written (default 1000)")
    offline.add_argument("--fit-windows", type=int, default=None,
                         help="fit windows sampled for the fit (default: 200 at <= 32 tokens, 96 at <= 64, 48 "
                              "longer; the cost grows with windows x tokens^2)")
    offline.add_argument("--objective", choices=("iou", "faithful", "both"), default="both",
                         help="what each head's program is fitted to: its pattern (iou), what the head writes "
                              "(faithful: ||(P - A) V_h||), or both (default)")
    offline.add_argument("--max-terms", type=int, default=None, metavar="N",
                         help="most weighted terms per fitted program (features, token sets and query sets "
                              "together; default 12; 0: no cap): the least important are dropped, the rest refitted")
    offline.add_argument("--profile-length", type=int, default=None, metavar="L",
                         help="a relative-position profile: one weight per distance 0..L-1 back, written as one "
                              "literal table in place of the self/previous-token indicators (default 0: none)")
    add_parallel_arguments(offline, what="the fit's chunks of heads", default="one, this process")
    parser.set_defaults(func=handle)


def _endpoint_configured(args: argparse.Namespace) -> bool:
    return bool(args.base_url or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"))


def handle(args: argparse.Namespace) -> int:
    from attnc.synth import SynthConfigError

    use_llm = args.llm or (not args.offline and _endpoint_configured(args))
    try:
        if args.fit_windows is not None and args.fit_windows < 1:
            raise ValueError(f"--fit-windows must be >= 1, got {args.fit_windows}")
        if args.max_terms is not None and args.max_terms < 0:
            raise ValueError(f"--max-terms must be >= 0 (0: no cap), got {args.max_terms}")
        if args.profile_length is not None and args.profile_length < 0:
            raise ValueError(f"--profile-length must be >= 0 (0: no profile), got {args.profile_length}")
        if args.concurrency < 1:
            raise ValueError(f"--concurrency must be >= 1, got {args.concurrency}")
        if use_llm and (args.workers is not None or args.ray is not None):
            raise ValueError("--workers and --ray split the --offline fit; --llm sends requests concurrently "
                             "with --concurrency")
        if use_llm:
            config = _llm_config(args).resolved()  # a missing endpoint fails here, before any model work
        corpus, loaded, windows = load_model_and_windows(args)
        heads = _heads(args, loaded)
        pool = None if use_llm else pool_from_args(args, args.model, loaded, default_workers=1)  # before any output
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            report = (_run_llm(args, config, loaded, windows, heads) if use_llm
                      else _run_offline(args, loaded, windows, heads, pool))
        finally:
            if pool is not None:
                pool.close()
    except SynthConfigError as error:
        print(f"attnc synth: error: {error}", file=sys.stderr)
        return 2
    except user_errors() as error:
        print(f"attnc synth: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def _heads(args, loaded):
    from attnc.runtime.heads import all_heads, parse_heads

    if args.heads:
        return parse_heads(args.heads, n_layers=loaded.n_layers, n_heads=loaded.n_heads)
    return all_heads(loaded.n_layers, loaded.n_heads)


def _llm_config(args):
    from attnc.synth import LLMSynthConfig

    return LLMSynthConfig(base_url=args.base_url, model=args.llm_model, n_candidates=args.candidates,
                          rounds=args.rounds, margin=args.margin, out_dir=args.out, max_requests=args.max_requests,
                          max_tokens=args.max_tokens, max_seconds=args.max_seconds,
                          max_completion_tokens=args.completion_tokens, request_timeout_s=args.request_timeout,
                          concurrency=args.concurrency)


def _run_llm(args, config, loaded, windows, heads) -> dict:
    from attnc.synth import HeadTask, run_llm_synthesis, summarize_head
    from attnc.synth.head_attention import HeadAttention, HeadAttentionScorer

    recorded = HeadAttention.record(loaded, windows, heads, max_fit=args.sample_windows,
                                    max_heldout=args.sample_windows, batch_size=args.batch_size)
    scorer = HeadAttentionScorer(recorded)
    best = _library_best(args.lib, scorer, recorded.heads) if args.lib else {}
    tasks = []
    for head in recorded.heads:
        name, iou, source = best.get(head, (None, 0.0, None))
        summary = summarize_head(head, recorded.samples(head), current_best=[(name, iou)] if name else (),
                                 token_budget=config.summary_token_budget)
        tasks.append(HeadTask(head=head, summary=summary.text, best_iou=iou, best_name=name, best_source=source))
    report = run_llm_synthesis(config, tasks, scorer).to_json()
    totals = report.get("totals", {})
    print(f"attnc synth --llm: {len(tasks)} heads, accepted {totals.get('accepted', 0)} of "
          f"{totals.get('candidates', 0)} candidates -> {args.out}", file=sys.stderr)
    return report


def _library_best(lib: Path, scorer, heads: list[str]) -> dict[str, tuple[str, float, str]]:
    """head -> (program, fit IoU, source) of the library's best program on the recorded windows."""
    from attnc.runtime.library import load_library

    library = load_library(lib)
    best: dict[str, tuple[str, float, str]] = {}
    for name in library.names:
        program = library.programs[name].program
        for head in heads:
            iou = scorer.score(program, head).iou_fit
            if iou > best.get(head, ("", -1.0, ""))[1]:
                best[head] = (name, iou, program.source)
    return best


def _run_offline(args, loaded, windows, heads, pool) -> dict:
    from attnc.synth.offline import synthesize_offline
    from attnc.synth.offline_fit import FitConfig

    knobs = {"max_total_terms": args.max_terms, "profile_length": args.profile_length}
    config = FitConfig(**{name: value for name, value in knobs.items() if value is not None})
    described = windows.describe()
    fitted_on = (f"{args.corpus} (sha256 {str(described.get('corpus_sha256', ''))[:12]}), fit split of windows "
                 f"{args.skip_windows}..{args.skip_windows + len(windows) - 1} of {args.window} tokens, seed {args.seed}")
    report = synthesize_offline(loaded, windows, heads=heads, out_dir=args.out, max_programs=args.max_programs,
                                progress=not args.json, objective=args.objective, fitted_on=fitted_on,
                                max_fit_windows=args.fit_windows, config=config, pool=pool)
    data = report.to_json()
    print(f"attnc synth --offline: {data.get('n_programs')} programs for {len(heads)} heads -> {args.out}",
          file=sys.stderr)
    return data
