"""Scaling curves: library scoring time vs programs, window length and heads; compile time vs programs.

    attnc bench scaling [--json] [--plot DIR] [--quick]

Programs are variants of starter programs with their constants changed (decay
rates, offsets, sink weights, window widths; see `program_variants`), written
as DSL source into a temporary directory and compiled with `build_library`,
exactly as `attnc compile` does (the compile time is that cold build).

Scoring time is `score_library` (program evaluation on the windows + the fast
IoU kernels) on token windows of the shipped corpus against SYNTHETIC
attention: a causal softmax of random logits [windows, heads, n, n], float32,
so the model forward does not dominate and any head count or window length can
be asked for. Each point is the median of --reps runs after one warm-up on a
short window. A growth exponent (least-squares slope of log time vs log size)
is fitted per curve (all points, and the largest three sizes, where fixed
costs matter least); each curve is plotted log-log as PNG into --plot DIR.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.machine import describe_machine, machine_line
from benchmarks.records import add_common_options, apply_threads, cuda_skip, emit, median, table_stream

DEFAULT_PROGRAM_SIZES = (10, 30, 100, 300, 1000)
DEFAULT_WINDOW_SIZES = (32, 64, 128, 256, 512, 1024, 2048)
DEFAULT_HEAD_SIZES = (1, 3, 9, 27, 81, 270)
QUICK_PROGRAM_SIZES = (4, 8, 16)
QUICK_WINDOW_SIZES = (16, 32, 64)
QUICK_HEAD_SIZES = (1, 2, 4)


def growth_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Least-squares slope of log(time) vs log(size): t ~ c * size ** exponent.

    Raises:
        ValueError: fewer than two distinct sizes, or a non-positive size or time.
    """
    x = np.asarray(sizes, dtype=np.float64)
    y = np.asarray(times, dtype=np.float64)
    if x.shape != y.shape or len(np.unique(x)) < 2:
        raise ValueError(f"growth_exponent needs >= 2 distinct sizes with one time each, got {x.tolist()}")
    if (x <= 0).any() or (y <= 0).any() or not np.isfinite(y).all():
        raise ValueError("growth_exponent needs positive sizes and positive finite times")
    slope, _ = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope)


def program_variants(count: int) -> dict[str, str]:
    """`count` native-form programs: starter programs with their constants varied.

    Templates (cycled): decay (0.7 ** d -> r ** d), previous/offset token
    (k == q - d), sink_previous (sink weight a), local window (width),
    sink_decay (sink weight and rate), word_start_decay (rate),
    same-sentence decay (rate). Constants differ for every program.
    """
    out: dict[str, str] = {}
    for i in range(count):
        t, p = i % 7, i // 7
        frac = (p * 0.618034) % 1.0  # low-discrepancy constants in [0, 1)
        rate = f"{0.30 + 0.69 * frac:.5f}"
        weight = f"{0.05 + 0.9 * frac:.5f}"
        rest = f"{0.95 - 0.9 * frac:.5f}"
        if t == 0:
            name, body = f"decay_v{p}", f"return {rate} ** max(q - k, 0) if k <= q else 0.0"
        elif t == 1:
            name, body = f"offset_v{p}", f"return 1.0 if k == q - {p % 64 + 1} else {0.001 * (p // 64):.3f}"
        elif t == 2:
            name, body = (f"sink_previous_v{p}",
                          f"return {weight} * (1.0 if k == 0 else 0.0) + {rest} * (1.0 if k == q - 1 else 0.0)")
        elif t == 3:
            name, body = f"local_window_v{p}", f"return 1.0 if k <= q and k > q - {p % 120 + 2} else 0.0"
        elif t == 4:
            name, body = (f"sink_decay_v{p}", f"return {weight} * (1.0 if k == 0 else 0.0) + "
                                              f"{rest} * ({rate} ** max(q - k, 0) if k <= q else 0.0)")
        elif t == 5:
            name, body = (f"word_start_decay_v{p}",
                          f"return {rate} ** max(w.word_id[q] - w.word_id[k], 0) if k <= q and w.word_start[k] else 0.0")
        else:
            name, body = (f"same_sentence_decay_v{p}",
                          f"return {rate} ** (q - k) if k <= q and w.sent_id[k] == w.sent_id[q] else 0.0")
        out[name] = f"def {name}(q: int, k: int, w: Window) -> float:\n    {body}\n"
    return out


def build_variant_library(count: int, root: Path, vocab):
    """Write `count` variants under root/src, compile them to root/lib; (library, compile seconds)."""
    from attnc.compiler.library_build import build_library
    from attnc.runtime.library import load_library

    src = root / "src"
    src.mkdir(parents=True)
    for name, text in program_variants(count).items():
        (src / f"{name}.py").write_text(text)
    start = time.perf_counter()
    report = build_library([src], root / "lib")
    compile_s = time.perf_counter() - start
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} generated programs failed to compile, first: "
                           f"{report.failed[0].name}: {report.failed[0].messages[:1]}")
    library = load_library(root / "lib", vocab=vocab)
    return library, compile_s


def synthetic_attention(rng: np.random.Generator, windows: int, heads: int, n: int) -> np.ndarray:
    """Causal softmax of random logits with per-head temperature: float32 [windows, heads, n, n]."""
    out = np.empty((windows, heads, n, n), dtype=np.float32)
    causal = np.tril(np.ones((n, n), dtype=bool))
    for w in range(windows):
        for h in range(heads):
            logits = rng.standard_normal((n, n), dtype=np.float32) * np.float32(rng.uniform(0.5, 6.0))
            logits[~causal] = -np.inf
            a = np.exp(logits - logits.max(-1, keepdims=True))
            out[w, h] = a / a.sum(-1, keepdims=True)
    return out


def corpus_windows(tokenizer, n: int, count: int) -> np.ndarray:
    from attnc.runtime.corpus import make_windows, read_corpus

    corpus = Path(__file__).resolve().parents[1] / "attnc" / "data" / "stories.txt"
    return make_windows(read_corpus(corpus), tokenizer, window=n, max_windows=max(2, count)).ids[:count]


def time_scoring(programs, vocab, ids: np.ndarray, attn: np.ndarray, reps: int) -> float:
    """Median seconds of score_library over one batch, after a warm-up on a 16-token slice."""
    from attnc.study.score_run import score_library

    heads = [f"0.{h}" for h in range(attn.shape[1])]
    if len(ids) < 2:
        raise ValueError("scoring needs >= 2 windows (one per split)")
    held = np.arange(len(ids)) % 2 == 1  # score_library needs windows in both splits
    m = min(16, ids.shape[1])
    warm = score_library([(np.arange(len(ids)), ids[:, :m], np.ascontiguousarray(attn[:, :1, :m, :m]))],
                         programs, vocab, heads[:1], held)
    if warm.failures:
        raise RuntimeError(f"programs failed while scoring: {dict(list(warm.failures.items())[:3])}")
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        score_library([(np.arange(len(ids)), ids, attn)], programs, vocab, heads, held)
        times.append(time.perf_counter() - start)
    return median(times)


def run_scaling_bench(tokenizer, vocab, *, program_sizes: Sequence[int] = DEFAULT_PROGRAM_SIZES,
                      window_sizes: Sequence[int] = DEFAULT_WINDOW_SIZES,
                      head_sizes: Sequence[int] = DEFAULT_HEAD_SIZES, base_programs: int = 10,
                      base_window: int = 128, base_heads: int = 9, n_windows: int = 2, reps: int = 3,
                      seed: int = 0, progress=None) -> dict:
    """Measure the four scaling curves and fit their growth exponents.

    Args:
        tokenizer, vocab: the tokenizer the windows are cut with and its tables.
        program_sizes: library sizes (scoring time and compile time vs programs).
        window_sizes: window lengths (scoring time vs n; two windows per point).
        head_sizes: head counts (scoring time vs heads).
        base_programs, base_window, base_heads: the fixed values of the other axes.
        n_windows: windows per scored batch on the programs and heads axes (>= 2: one per split).
        reps: measured repetitions per point (median).
        progress: a text stream for progress lines, or None.

    Returns:
        JSON-ready record with `curves` (name -> {x, seconds, exponent, axis, what}) and `exponents`.
    """
    rng = np.random.default_rng(seed)
    say = (lambda text: print(text, file=progress, flush=True)) if progress else (lambda text: None)
    curves: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="attnc-scaling-bench-") as tmp:
        ids = corpus_windows(tokenizer, base_window, n_windows)
        attn = synthetic_attention(rng, n_windows, base_heads, base_window)
        scoring, compiling = [], []
        base_library = None
        for count in program_sizes:
            library, compile_s = build_variant_library(count, Path(tmp) / f"p{count}", vocab)
            seconds = time_scoring(library.programs, vocab, ids, attn, reps)
            scoring.append(seconds)
            compiling.append(compile_s)
            say(f"  programs {count:>5}: compile {compile_s:8.2f} s, score {seconds:8.3f} s")
            if count == base_programs or base_library is None:
                base_library = library
        if base_programs not in program_sizes:
            base_library, _ = build_variant_library(base_programs, Path(tmp) / "base", vocab)
        curves["scoring_vs_programs"] = {"axis": "programs", "x": list(program_sizes), "seconds": scoring,
                                         "what": f"score_library, {n_windows} windows x {base_heads} heads x "
                                                 f"n={base_window}"}
        curves["compile_vs_programs"] = {"axis": "programs", "x": list(program_sizes), "seconds": compiling,
                                         "what": "build_library (cold: empty kernel directory)"}
        programs = base_library.programs
        by_window = []
        for n in window_sizes:
            seconds = time_scoring(programs, vocab, corpus_windows(tokenizer, n, 2),
                                   synthetic_attention(rng, 2, base_heads, n), reps)
            by_window.append(seconds)
            say(f"  window {n:>5}: score {seconds:8.3f} s")
        curves["scoring_vs_window"] = {"axis": "window length", "x": list(window_sizes), "seconds": by_window,
                                       "what": f"score_library, {base_programs} programs x {base_heads} heads x 2 windows"}
        by_heads = []
        for h in head_sizes:
            seconds = time_scoring(programs, vocab, ids, synthetic_attention(rng, n_windows, h, base_window), reps)
            by_heads.append(seconds)
            say(f"  heads {h:>5}: score {seconds:8.3f} s")
        curves["scoring_vs_heads"] = {"axis": "heads", "x": list(head_sizes), "seconds": by_heads,
                                      "what": f"score_library, {base_programs} programs x {n_windows} windows x "
                                              f"n={base_window}"}
    for name, curve in curves.items():
        curve["reps"] = 1 if name == "compile_vs_programs" else reps
        curve["exponent"] = growth_exponent(curve["x"], curve["seconds"])
        tail = min(3, len(curve["x"]))
        curve["tail_exponent"] = growth_exponent(curve["x"][-tail:], curve["seconds"][-tail:])
    return {
        "bench": "scaling",
        "attention": "synthetic causal softmax of random logits (float32); no model forward",
        "tokenizer": getattr(vocab, "name", ""),
        "reps": reps,
        "curves": curves,
        "exponents": {name: curve["exponent"] for name, curve in curves.items()},
        "tail_exponents": {name: curve["tail_exponent"] for name, curve in curves.items()},
        "machine": describe_machine(),
    }


def plot_curves(record: dict, out_dir: Path) -> list[str]:
    """One log-log PNG per curve in `out_dir`; returns the file paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, curve in record["curves"].items():
        fig, ax = plt.subplots(figsize=(5, 4))
        x, y = np.asarray(curve["x"], float), np.asarray(curve["seconds"], float)
        ax.loglog(x, y, "o-", label="measured")
        fit = np.exp(np.polyval(np.polyfit(np.log(x), np.log(y), 1), np.log(x)))
        ax.loglog(x, fit, "--", label=f"fit: exponent {curve['exponent']:.2f}")
        ax.set_xlabel(curve["axis"])
        ax.set_ylabel("seconds")
        ax.set_title(f"{name}\n{curve['what']}", fontsize=8)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(str(path))
    return paths


def print_tables(record: dict, stream=sys.stdout) -> None:
    print(machine_line(record["machine"]), file=stream)
    print(f"attention: {record['attention']}", file=stream)
    for name, curve in record["curves"].items():
        how = "one build per size" if curve["reps"] == 1 else f"median of {curve['reps']}"
        print(f"\n{name} ({curve['what']}), {how}:", file=stream)
        for x, s in zip(curve["x"], curve["seconds"]):
            print(f"  {curve['axis']:>14} {x:>6}: {s:10.4f} s", file=stream)
        print(f"  growth exponent: {curve['exponent']:.2f} (all points), {curve['tail_exponent']:.2f} "
              f"(largest {min(3, len(curve['x']))} sizes)", file=stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnc bench scaling", description=__doc__.split("\n")[0])
    add_common_options(parser)
    parser.add_argument("--model", default="smollm2-135m",
                        help="whose tokenizer cuts the windows (default smollm2-135m; tiny-llama for a test tokenizer)")
    parser.add_argument("--plot", default="bench-out", help="directory for the PNG plots (default bench-out/)")
    parser.add_argument("--reps", type=int, default=3, help="measured repetitions per scoring point")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    stream = table_stream(args.json)
    if args.device == "cuda":  # scoring and compiling run on the CPU (numpy, numba): no GPU rows
        print(cuda_skip("cuda") or "note: scoring runs on the CPU (numba); no GPU rows", file=stream)
    from attnc.window import Vocab

    if args.model.startswith("tiny"):
        from attnc.runtime.models import tiny_tokenizer

        tokenizer = tiny_tokenizer()
    else:
        from attnc.runtime.models import load_model

        tokenizer = load_model(args.model).tokenizer
    vocab = Vocab.from_tokenizer(tokenizer)
    sizes = {}
    if args.quick:
        sizes = dict(program_sizes=QUICK_PROGRAM_SIZES, window_sizes=QUICK_WINDOW_SIZES,
                     head_sizes=QUICK_HEAD_SIZES, base_programs=4, base_window=32, base_heads=2, n_windows=2)
        args.reps = 1
    record = run_scaling_bench(tokenizer, vocab, reps=args.reps, progress=stream, **sizes)
    record["plots"] = plot_curves(record, Path(args.plot)) if args.plot else []
    print_tables(record, stream)
    print(f"\nplots: {', '.join(record['plots'])}", file=stream)
    emit(record, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
