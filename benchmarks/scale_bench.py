"""Scale: the same extraction and scoring on 1 and 2 workers, and what the paper's scale would cost.

    attnc bench scale --lib LIB [--model smollm2-135m] [--corpus FILE] [--windows 32] [--window 128]
                      [--workers 2] [--pool process|ray] [--json] [--quick]

One run measures, side by side, on the same windows:

- extraction: the model's attention on every window written to a store (one
  store shard per task), on 1 worker (this process) and on `--workers`
  workers (local processes, or a local Ray cluster with ``--pool ray``);
- scoring: every program of LIB against every head of that store.

Worker start-up (spawning, loading the model, a first scoring pass that loads
and JITs the library) is done before the clock starts:
the ratio is throughput, 1-worker seconds / N-worker seconds. The two results
are checked equal (scores to 1e-9, stores bit for bit).

The cost model scales the measured per-unit costs to the paper's setting
(Llama-3.2-3B, 10,000 windows of 128 tokens, 1,000 programs, 32 workers):
extraction per window by the ratio of parameter counts (a forward pass costs
~2 x parameters x tokens), scoring per window x program x head unit as
measured (same window length), spread over the workers at the measured
parallel efficiency (ratio / workers). It is an estimate from a small machine:
the table says what each figure comes from.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine, machine_line
from benchmarks.records import add_common_options, apply_threads, emit, table_stream

#: The paper's scale.
PAPER = {"model": "Llama-3.2-3B", "params": 3.21e9, "n_layers": 28, "n_heads": 24, "windows": 10_000,
         "window": 128, "programs": 1_000, "workers": 32}


@dataclass
class Measured:
    """Seconds of one piece of work on 1 and on N workers."""

    one: float
    many: float
    workers: int

    @property
    def ratio(self) -> float:
        return self.one / self.many if self.many > 0 else float("nan")


def measure(lib: Path, model: str, corpus: Path, *, windows: int, window: int, workers: int, pool_kind: str,
            batch_size: int, shard_size: int, say) -> dict:
    """Extraction and scoring on 1 and `workers` workers; per-unit costs and the equality checks."""
    from attnc.parallel.pools import ProcessPool
    from attnc.runtime.corpus import make_windows, read_corpus
    from attnc.runtime.extract import extract_attention
    from attnc.runtime.library import load_library
    from attnc.runtime.models import load_model
    from attnc.study.mixture_run import store_heldout_by_window
    from attnc.study.score_run import score_batches, score_library, score_store_shards

    loaded = load_model(model)
    cut = make_windows(read_corpus(corpus), loaded.tokenizer, window=window, max_windows=windows)
    library = load_library(lib, vocab=loaded.vocab)
    n_windows, n_programs, n_heads = len(cut), len(library.names), loaded.n_layers * loaded.n_heads
    say(f"{n_windows} windows of {window} tokens, {n_programs} programs, {n_heads} heads; "
        f"1 vs {workers} workers ({pool_kind})")
    if pool_kind == "ray":
        from attnc.parallel.ray_pool import RayPool

        pool = RayPool("local", workers, model)
    else:
        pool = ProcessPool(workers, model)
        _warm(pool, workers)
    with tempfile.TemporaryDirectory(prefix="attnc-scale-") as tmp:
        # warm-up in this process: the first forward and the library's kernels
        extract_attention(loaded, cut.ids[:1], store_dir=Path(tmp) / "warm", batch_size=batch_size, progress=False)
        try:
            started = time.perf_counter()
            store = extract_attention(loaded, cut.ids, store_dir=Path(tmp) / "one", batch_size=batch_size,
                                      shard_size=shard_size, progress=False)
            extract_one = time.perf_counter() - started
            started = time.perf_counter()
            extract_attention(loaded, cut.ids, store_dir=Path(tmp) / "many", batch_size=batch_size,
                              shard_size=shard_size, progress=False, pool=pool)
            extract_many = time.perf_counter() - started
            same_store = _stores_equal(Path(tmp) / "one", Path(tmp) / "many")

            heldout = store_heldout_by_window(store)
            score_batches([store.read_shard(0)], library.programs, loaded.vocab, store.head_names, heldout)  # JIT
            started = time.perf_counter()
            single = score_library(store.iter_windows(), library.programs, loaded.vocab, store.head_names, heldout)
            score_one = time.perf_counter() - started
            score_store_shards(pool, store, lib, heldout)  # each worker loads the library and JITs it
            started = time.perf_counter()
            sharded = score_store_shards(pool, store, lib, heldout)
            score_many = time.perf_counter() - started
        finally:
            pool.close()
    same_scores = bool(single.table.programs == sharded.table.programs and np.allclose(
        single.table.iou_fit, sharded.table.iou_fit, rtol=0, atol=1e-9) and np.allclose(
        single.table.iou_heldout, sharded.table.iou_heldout, rtol=0, atol=1e-9))
    params = sum(p.numel() for p in loaded.model.parameters())
    return {
        "model": loaded.name, "params": int(params), "n_windows": n_windows, "window": window,
        "n_programs": n_programs, "n_heads": n_heads, "workers": workers, "pool": pool_kind,
        "n_shards": store.n_shards,
        "extract": vars(Measured(extract_one, extract_many, workers)) | {"ratio": extract_one / extract_many},
        "score": vars(Measured(score_one, score_many, workers)) | {"ratio": score_one / score_many},
        "equal": {"store": same_store, "scores": same_scores},
        "per_unit": {"extract_s_per_window": extract_one / n_windows,
                     "score_s_per_window_program_head": score_one / (n_windows * n_programs * n_heads)},
    }


def _warm(pool, workers: int) -> None:
    """Start every local worker (spawn, import, load the model) before timing."""
    from attnc.parallel.shard_worker import Ready

    list(pool.map([Ready()] * (2 * workers)))


def _stores_equal(a: Path, b: Path) -> bool:
    from attnc.runtime.store import AttentionStore

    left, right = AttentionStore.open(a), AttentionStore.open(b)
    return left.n_shards == right.n_shards and all(
        np.array_equal(x, y) for k in range(left.n_shards) for x, y in zip(left.read_shard(k), right.read_shard(k)))


def cost_model(measured: dict, paper: dict = PAPER) -> list[dict]:
    """Rows (what, 1 worker, `paper['workers']` workers, basis) for the paper's scale."""
    unit = measured["per_unit"]
    heads = paper["n_heads"] * paper["n_layers"]
    efficiency = min(1.0, min(measured["extract"]["ratio"], measured["score"]["ratio"]) / measured["workers"])
    param_ratio = paper["params"] / measured["params"]
    extract = unit["extract_s_per_window"] * param_ratio * paper["windows"]
    score = unit["score_s_per_window_program_head"] * paper["windows"] * paper["programs"] * heads
    store_bytes = paper["windows"] * heads * paper["window"] ** 2 * 2
    spread = paper["workers"] * efficiency
    return [
        {"what": "extract (forward passes)", "one_worker_h": extract / 3600, "workers_h": extract / spread / 3600,
         "basis": f"{unit['extract_s_per_window'] * 1e3:.1f} ms/window measured x {param_ratio:.1f} (parameters)"},
        {"what": "score (IoU, program x head)", "one_worker_h": score / 3600, "workers_h": score / spread / 3600,
         "basis": f"{unit['score_s_per_window_program_head'] * 1e9:.1f} ns per window-program-head measured"},
        {"what": "total", "one_worker_h": (extract + score) / 3600, "workers_h": (extract + score) / spread / 3600,
         "basis": f"{paper['workers']} workers at the measured efficiency {efficiency:.2f}"},
        {"what": "attention store (float16)", "one_worker_h": None, "workers_h": None,
         "basis": f"{store_bytes / 1e9:.0f} GB ({heads} heads x {paper['windows']} windows x {paper['window']}^2)"},
    ]


def print_tables(record: dict, stream) -> None:
    m = record["measured"]
    print(machine_line(record["machine"]), file=stream)
    print(f"load: {record['load']}", file=stream)
    print(f"{m['model']}: {m['n_windows']} windows x {m['window']} tokens, {m['n_programs']} programs, "
          f"{m['n_heads']} heads, {m['n_shards']} shards; pool: {m['pool']}", file=stream)
    print(f"{'work':<10} {'1 worker s':>11} {m['workers']:>2} workers s {'ratio':>7}  equal", file=stream)
    for name, key in (("extract", "store"), ("score", "scores")):
        row = m[name]
        print(f"{name:<10} {row['one']:>11.2f} {row['many']:>12.2f} {row['ratio']:>7.2f}  {m['equal'][key]}",
              file=stream)
    paper = record["paper"]
    print(f"\ncost model: {paper['model']}, {paper['windows']:,} windows of {paper['window']}, "
          f"{paper['programs']:,} programs, {paper['workers']} workers", file=stream)
    print(f"{'what':<28} {'1 worker h':>11} {paper['workers']:>3} workers h  basis", file=stream)
    for row in record["cost_model"]:
        one = "" if row["one_worker_h"] is None else f"{row['one_worker_h']:.1f}"
        many = "" if row["workers_h"] is None else f"{row['workers_h']:.2f}"
        print(f"{row['what']:<28} {one:>11} {many:>13}  {row['basis']}", file=stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnc bench scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", type=Path, required=True, help="library directory (attnc compile)")
    parser.add_argument("--model", default="smollm2-135m", help="model to extract with (default: smollm2-135m)")
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[1] / "attnc/data/stories.txt")
    parser.add_argument("--windows", type=int, default=32, help="windows measured (default: 32)")
    parser.add_argument("--window", type=int, default=128, help="tokens per window (default: 128)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel run (default: 2)")
    parser.add_argument("--pool", choices=("process", "ray"), default="process",
                        help="local processes or a local Ray cluster (default: process)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=None,
                        help="windows per shard/task (default: windows / (2 x workers))")
    add_common_options(parser)
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    stream = table_stream(args.json)
    import os

    if args.quick:
        args.windows, args.window = min(args.windows, 8), min(args.window, 32)
    shard = args.shard_size or max(1, args.windows // (2 * args.workers))
    measured = measure(args.lib, args.model, args.corpus, windows=args.windows, window=args.window,
                       workers=args.workers, pool_kind=args.pool, batch_size=args.batch_size, shard_size=shard,
                       say=lambda text: print(text, file=sys.stderr))
    record = {"benchmark": "scale", "machine": describe_machine(),
              "load": " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min load average)",
              "measured": measured, "paper": PAPER, "cost_model": cost_model(measured)}
    print_tables(record, stream)
    emit(record, args)
    return 0
