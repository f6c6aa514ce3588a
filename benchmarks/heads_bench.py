"""Head cost: neural attention vs program heads, one layer and the whole model, side by side.

    attnc bench heads [--model smollm2-135m] [--windows 128,512,2048] [--json]

1. One attention layer. The attention module of layer --layer (default: the
   middle one) is timed as the decoder layer calls it - hidden states, rotary
   position embeddings and causal mask prepared by the model itself - inside a
   one-layer copy of the model (token embeddings + that layer's weights), so
   a 2,048-token window costs one layer, not the whole stack. Variants: all
   heads neural, and h heads replaced by programs (h = 1, 25% of the heads,
   all of them). The time of a replaced variant includes getting the
   program matrices (the surrogate gets them at the first replaced layer of
   each forward; the default programs are window-independent, so after the
   warm-up that is a lookup of their validated rows, reused across forwards
   and handles as in a perplexity run). Batch 1; repetitions interleaved;
   medians of wall time (`ratio`) and of the thread's CPU time (`cpu_ratio`:
   with --threads 1, steadier on a busy machine).
2. The whole model. Perplexity-eval throughput (tokens/s) on windows of 128
   tokens from the shipped corpus, stock vs 25% of all heads replaced (every
   4th head in layer-major order), alternating batch by batch, medians;
   `throughput_ratio_25` = replaced tokens/s / stock tokens/s. The share of
   the replaced run's time spent computing program matrices is measured by
   timing the program source (`program_eval_share`). Programs the source calls
   window-independent (all the default ones) are validated once per layout and
   their rows reused by later forwards (attnc.runtime.surrogate), so after
   the warm-up they cost the source nothing.

Replaced heads cycle through a few real starter programs (previous_token,
first_token, sink_previous, decay_070) compiled into a temporary library; the
surrogate computes each program's matrices once per forward and shares them.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import math
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmarks.machine import describe_machine, machine_line
from benchmarks.records import add_common_options, bench_model, emit, median, start

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS_DIR = ROOT / "programs"
CORPUS = ROOT / "attnc" / "data" / "stories.txt"
DEFAULT_PROGRAMS = ("previous_token", "first_token", "sink_previous", "decay_070")
DEFAULT_WINDOWS = (128, 512, 2048)


class TimedSource:
    """A ProgramSource that forwards to another one and adds up the time spent in it."""

    def __init__(self, source):
        self.source = source
        self.seconds = 0.0
        self.calls = 0

    @property
    def names(self) -> list[str]:
        return list(self.source.names)

    def matrices(self, names, ids):
        start = time.perf_counter()
        try:
            return self.source.matrices(names, ids)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def sparse_matrices(self, names, ids):
        """The source's row-sparse matrices (SparseProgramSource), or none when it has no such method."""
        sparse = getattr(self.source, "sparse_matrices", None)
        if sparse is None:
            return {}
        start = time.perf_counter()
        try:
            return sparse(names, ids)
        finally:
            self.seconds += time.perf_counter() - start


    def window_independent(self, name: str) -> bool:
        """Forwarded (WindowIndependentSource): the surrogate reuses such programs' rows across forwards."""
        ask = getattr(self.source, "window_independent", None)
        return bool(ask is not None and ask(name))


class ModuleTimer:
    """Wall time of each call of one module (forward pre-hook to forward hook), and the
    calling thread's CPU time (with --threads 1 all of the call's work: a figure that
    other processes on a busy machine disturb far less than wall time)."""

    def __init__(self, module: torch.nn.Module, device: str):
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        self._sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        self._start = 0.0
        self._cpu_start = 0.0
        self._hooks = [module.register_forward_pre_hook(self._before), module.register_forward_hook(self._after)]

    def _before(self, module, args):
        self._sync()
        self._start = time.perf_counter()
        self._cpu_start = time.thread_time()

    def _after(self, module, args, output):
        self._sync()
        self.times.append(time.perf_counter() - self._start)
        self.cpu_times.append(time.thread_time() - self._cpu_start)

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()


def program_library(names: Sequence[str], out: Path, vocab):
    """Compile the named starter programs (programs/NAME.py) into a library at `out` and load it."""
    from attnc.compiler.library_build import build_library
    from attnc.runtime.library import load_library

    paths = [PROGRAMS_DIR / f"{name}.py" for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"starter programs not found: {', '.join(missing)} (run from an attnc checkout)")
    report = build_library(paths, out)
    if report.failed:
        raise RuntimeError(f"starter programs failed to compile: {[r.name for r in report.failed]}")
    return load_library(out, vocab=vocab)


def one_layer_model(loaded, layer: int, device: str = "cpu") -> torch.nn.Module:
    """A base model (embeddings + one decoder layer + final norm) with the weights of `layer`.

    Its attention module is called exactly as in the full model; only the
    other layers are gone. Works for Llama-family (`layers.N.`) and GPT-2 (`h.N.`).
    """
    base = loaded.model.base_model
    config = copy.deepcopy(base.config)
    config.num_hidden_layers = 1
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[layer]]
    one = type(base)(config)
    pattern = re.compile(r"^(layers|h)\.(\d+)\.")
    state = {}
    for key, value in base.state_dict().items():
        match = pattern.match(key)
        if match is None:
            state[key] = value
        elif int(match.group(2)) == layer:
            state[f"{match.group(1)}.0.{key[match.end():]}"] = value
    one.load_state_dict(state)
    one.eval()
    one.requires_grad_(False)
    return one.to(device)


def _attention_module(model: torch.nn.Module) -> torch.nn.Module:
    found = [m for m in model.modules()
             if type(m).__name__.endswith("Attention") and getattr(m, "layer_idx", None) == 0]
    if len(found) != 1:
        raise RuntimeError(f"expected one attention module with layer_idx 0 in {type(model).__name__}, found {len(found)}")
    return found[0]


def corpus_ids(tokenizer, window: int, count: int) -> np.ndarray:
    """`count` windows of `window` tokens from the shipped corpus (int64 [count, window])."""
    from attnc.runtime.corpus import make_windows, read_corpus

    return make_windows(read_corpus(CORPUS), tokenizer, window=window, max_windows=max(2, count)).ids[:count]


def head_counts(n_heads: int) -> list[int]:
    """h = 1, 25% of the heads (at least 1), all heads; distinct, ascending."""
    return sorted({1, max(1, round(n_heads / 4)), n_heads})


def layer_map(heads: int, programs: Sequence[str]):
    """Heads 0..heads-1 of layer 0 -> programs, cycling through them."""
    from attnc.runtime.replacement import ReplacementMap

    return ReplacementMap.from_programs({(0, h): programs[h % len(programs)] for h in range(heads)})


def quarter_map(n_layers: int, n_heads: int, programs: Sequence[str]):
    """Every 4th head in layer-major order (25% of all heads) -> programs, cycling."""
    from attnc.runtime.replacement import ReplacementMap

    chosen = [(l, h) for l in range(n_layers) for h in range(n_heads) if (l * n_heads + h) % 4 == 0]
    return ReplacementMap.from_programs({key: programs[i % len(programs)] for i, key in enumerate(chosen)})


def layer_costs(loaded, source, programs: Sequence[str], windows: Sequence[int], *, layer: int,
                reps: int, device: str) -> list[dict]:
    """Per-window-length median time of one attention layer, neural vs h heads replaced."""
    from attnc.runtime.surrogate import install_surrogates

    one = one_layer_model(loaded, layer, device)
    timer = ModuleTimer(_attention_module(one), device)
    counts = head_counts(loaded.n_heads)
    rows = []
    try:
        for n in windows:
            ids = torch.from_numpy(corpus_ids(loaded.tokenizer, n, 1)).to(device)
            times: dict[int, list[float]] = {h: [] for h in [0, *counts]}
            cpu_times: dict[int, list[float]] = {h: [] for h in times}
            for rep in range(reps + 1):  # repetition 0 warms up (JIT, tables, allocator)
                for h in times:
                    handle = install_surrogates(one, source, layer_map(h, programs)) if h else None
                    try:
                        with torch.inference_mode():
                            one(input_ids=ids, use_cache=False)
                    finally:
                        if handle is not None:
                            handle.remove()
                    if rep:
                        times[h].append(timer.times[-1])
                        cpu_times[h].append(timer.cpu_times[-1])
            neural, neural_cpu = median(times[0]), median(cpu_times[0])
            for h in counts:
                replaced, replaced_cpu = median(times[h]), median(cpu_times[h])
                rows.append({"window": n, "h": h, "programs_used": min(h, len(programs)), "neural_ms": neural * 1e3,
                             "replaced_ms": replaced * 1e3, "ratio": replaced / neural,
                             "neural_cpu_ms": neural_cpu * 1e3, "replaced_cpu_ms": replaced_cpu * 1e3,
                             "cpu_ratio": replaced_cpu / neural_cpu if neural_cpu else float("nan")})
    finally:
        timer.remove()
    return rows


def model_throughput(loaded, source: TimedSource, programs: Sequence[str], *, n_windows: int, window: int,
                     batch_size: int, reps: int, profile: bool = False) -> dict:
    """Perplexity-eval tokens/s, stock vs 25% of heads replaced; medians over repetitions.

    The two variants alternate batch by batch (their order flips every batch),
    so a change in machine load hits both alike. Each repetition gives one
    tokens/s per variant (all batches); each batch also gives a paired ratio.
    """
    from attnc.runtime.perplexity import perplexity
    from attnc.runtime.surrogate import install_surrogates

    ids = corpus_ids(loaded.tokenizer, window, n_windows)
    replacement = quarter_map(loaded.n_layers, loaded.n_heads, programs)
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    tokens = len(ids) * (window - 1)
    tps: dict[str, list[float]] = {"stock": [], "replaced": []}
    nll: dict[str, float] = {}
    paired: list[float] = []
    program_s, replaced_s = 0.0, 0.0
    for rep in range(reps + 1):  # repetition 0 warms up
        seconds = {"stock": 0.0, "replaced": 0.0}
        nll = {"stock": 0.0, "replaced": 0.0}
        for j, batch in enumerate(batches):
            order = ["stock", "replaced"] if (rep + j) % 2 == 0 else ["replaced", "stock"]
            batch_s = {}
            for variant in order:
                handle = install_surrogates(loaded, source, replacement) if variant == "replaced" else None
                before = source.seconds
                try:
                    result = perplexity(loaded, batch, batch_size=batch_size, surrogate=handle, progress=False)
                finally:
                    if handle is not None:
                        handle.remove()
                batch_s[variant] = result.seconds
                seconds[variant] += result.seconds
                nll[variant] += result.nll_sum
                if rep and handle is not None:
                    program_s += source.seconds - before
                    replaced_s += result.seconds
            if rep:
                paired.append(batch_s["stock"] / batch_s["replaced"])
        if rep:
            for variant in tps:
                tps[variant].append(tokens / seconds[variant])
    stock, replaced = median(tps["stock"]), median(tps["replaced"])
    out = {
        "window": window, "n_windows": int(len(ids)), "batch_size": batch_size, "reps": reps,
        "replaced_heads": len(replacement), "total_heads": loaded.n_layers * loaded.n_heads,
        "stock_tokens_per_s": stock, "replaced_tokens_per_s": replaced,
        "throughput_ratio_25": replaced / stock,
        "paired_batch_ratio_median": median(paired),
        "paired_batch_ratio_range": [min(paired), max(paired)],
        "stock_tokens_per_s_reps": tps["stock"], "replaced_tokens_per_s_reps": tps["replaced"],
        "program_eval_share": program_s / replaced_s if replaced_s else 0.0,
        "ppl_stock": math.exp(nll["stock"] / tokens), "ppl_replaced": math.exp(nll["replaced"] / tokens),
    }
    if profile:
        handle = install_surrogates(loaded, source, replacement)
        try:
            profiler = cProfile.Profile()
            profiler.runcall(perplexity, loaded, ids, batch_size=batch_size, surrogate=handle, progress=False)
        finally:
            handle.remove()
        out["profile"] = _profile_summary(profiler)
    return out


def _profile_summary(profiler: cProfile.Profile, top: int = 25) -> str:
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def run_heads_bench(loaded, *, windows: Sequence[int] = DEFAULT_WINDOWS, layer: int | None = None,
                    programs: Sequence[str] = DEFAULT_PROGRAMS, reps: int = 3, ppl_windows: int = 16,
                    ppl_window: int = 128, batch_size: int = 8, device: str = "cpu",
                    profile: bool = False) -> dict:
    """Measure head cost (see the module docstring).

    Args:
        loaded: a LoadedModel (moved to `device`).
        windows: window lengths for the one-layer table (each <= the model's context).
        layer: the layer whose attention is timed (default: the middle layer).
        programs: starter programs (programs/NAME.py) the replaced heads use.
        reps: measured repetitions per variant (after one warm-up), interleaved.
        ppl_windows, ppl_window, batch_size: the whole-model perplexity run.
        device: "cpu" or "cuda".
        profile: also cProfile one replaced perplexity run (record key "profile").

    Returns:
        JSON-ready record: layer_table, throughput (with throughput_ratio_25), machine, settings.

    Raises:
        ValueError: a window longer than the model's context, or a layer it lacks.
    """
    layer = loaded.n_layers // 2 if layer is None else layer
    if not 0 <= layer < loaded.n_layers:
        raise ValueError(f"--layer {layer}: the model has layers 0..{loaded.n_layers - 1}")
    too_long = [n for n in [*windows, ppl_window] if n > loaded.max_positions]
    if too_long:
        raise ValueError(f"windows {too_long} exceed {loaded.name}'s context of {loaded.max_positions} tokens")
    loaded.model.to(device)
    with tempfile.TemporaryDirectory(prefix="attnc-heads-bench-") as tmp:
        source = TimedSource(program_library(programs, Path(tmp) / "lib", loaded.vocab))
        table = layer_costs(loaded, source, programs, windows, layer=layer, reps=reps, device=device)
        throughput = model_throughput(loaded, source, programs, n_windows=ppl_windows, window=ppl_window,
                                      batch_size=batch_size, reps=reps, profile=profile)
    return {
        "bench": "heads",
        "model": loaded.name,
        "attn_implementation": loaded.model.config._attn_implementation,
        "device": device,
        "layer": layer,
        "n_heads": loaded.n_heads,
        "programs": list(programs),
        "reps": reps,
        "layer_table": table,
        "throughput": throughput,
        "throughput_ratio_25": throughput["throughput_ratio_25"],
        "machine": describe_machine(),
    }


def print_tables(record: dict, stream=sys.stdout) -> None:
    print(machine_line(record["machine"]), file=stream)
    print(f"\none attention layer (layer {record['layer']} of {record['model']}, "
          f"{record['attn_implementation']}, {record['device']}, batch 1, median of {record['reps']}):", file=stream)
    print(f"  {'window':>6} {'h':>4} {'programs':>8} {'neural ms':>10} {'replaced ms':>12} {'ratio':>7}"
          f"   {'cpu ms: neural':>14} {'replaced':>9} {'ratio':>6}", file=stream)
    for row in record["layer_table"]:
        print(f"  {row['window']:>6} {row['h']:>4} {row['programs_used']:>8} {row['neural_ms']:>10.2f} "
              f"{row['replaced_ms']:>12.2f} {row['ratio']:>7.2f}   {row['neural_cpu_ms']:>14.2f} "
              f"{row['replaced_cpu_ms']:>9.2f} {row['cpu_ratio']:>6.2f}", file=stream)
    t = record["throughput"]
    print(f"\nwhole model, perplexity eval ({t['n_windows']} windows x {t['window']} tokens, batch {t['batch_size']}):",
          file=stream)
    print(f"  stock     {t['stock_tokens_per_s']:9.1f} tokens/s   ppl {t['ppl_stock']:.3f}", file=stream)
    print(f"  replaced  {t['replaced_tokens_per_s']:9.1f} tokens/s   ppl {t['ppl_replaced']:.3f}   "
          f"({t['replaced_heads']}/{t['total_heads']} heads; program evaluation "
          f"{100 * t['program_eval_share']:.1f}% of its time)", file=stream)
    print(f"  throughput_ratio_25 = {t['throughput_ratio_25']:.3f}  (median of {t['reps']} repetitions; "
          f"per-batch paired ratio: median {t['paired_batch_ratio_median']:.3f}, "
          f"range {t['paired_batch_ratio_range'][0]:.3f}-{t['paired_batch_ratio_range'][1]:.3f})", file=stream)
    if "profile" in t:
        print("\nprofile of one replaced perplexity run (by own time):\n" + t["profile"], file=stream)


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnc bench heads", description=__doc__.split("\n")[0])
    add_common_options(parser)
    parser.add_argument("--model", default="smollm2-135m",
                        help="model name or path (default smollm2-135m); tiny-llama / tiny-gpt2: random test models")
    parser.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa", help="stock attention implementation")
    parser.add_argument("--windows", type=_int_list, default=list(DEFAULT_WINDOWS),
                        help="window lengths of the one-layer table (default 128,512,2048)")
    parser.add_argument("--layer", type=int, default=None, help="layer timed (default: the middle one)")
    parser.add_argument("--reps", type=int, default=3, help="measured repetitions per variant (after one warm-up)")
    parser.add_argument("--ppl-windows", type=int, default=16, help="windows of the perplexity run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="cProfile one replaced perplexity run")
    args = parser.parse_args(argv)
    stream, skipped = start(args, "heads")
    if skipped:
        return 0
    loaded = bench_model(args.model, args.attn)
    if args.quick:
        args.windows, args.reps, args.ppl_windows, args.batch_size = [32, 64], 1, 4, 2
    record = run_heads_bench(loaded, windows=args.windows, layer=args.layer, reps=args.reps,
                             ppl_windows=args.ppl_windows, batch_size=args.batch_size, device=args.device,
                             profile=args.profile)
    print_tables(record, stream)
    emit(record, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
