"""Cold `attnc compile` of an LLM-style library of paper-form loop programs, and the JIT it defers.

    attnc bench compile-cold [--programs 500] [--seed 0] [--first-use 20] [--json] [--out FILE]

Measured side by side in one run, each step in a fresh process with an empty
numba cache (NUMBA_CACHE_DIR set to a new directory), on programs from
benchmarks/paper_loop_programs.py written to a temporary directory:

1. compile: `python -m attnc compile DIR -o LIB --json`, wall seconds (the
   issue's figure: < 180 s for 500 programs on 2 cores). It validates,
   compiles, probes and checks duplicates without any JIT (loop kernels run
   as plain Python on the probe windows);
2. first use: a process that loads LIB and evaluates the first --first-use
   numba programs once on a batch of 8 windows of 128 tokens (numba JIT-
   compiles each kernel there), then once more (warm): seconds per program;
3. cached: the same in a new process with the cache of step 2 (what a second
   run pays);
4. `precompile_library` (`attnc compile --jit N`) of the same --first-use
   programs with 1 and with 2 worker processes, each from an empty cache.

`eager_compile_estimate_s` (the first kernel's JIT, which also compiles the
shared helpers, plus the median JIT of the others times the distinct kernels)
estimates what an eager compile (JIT at compile time, as before) would take;
the record says it is an estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import describe_machine, machine_line
from benchmarks.paper_loop_programs import paper_loop_sources
from benchmarks.records import emit, table_stream

ROOT = Path(__file__).resolve().parents[1]

_FIRST_USE = """
import json, sys, time
import numpy as np
from attnc.compiler.probing import probe_vocab
from attnc.runtime.library import load_library
library = load_library(sys.argv[1])
vocab = probe_vocab()
ids = np.random.default_rng(0).integers(0, vocab.size, size=(8, 128))
names = [name for name in library.names if library.records[name].backend == "numba"][:int(sys.argv[2])]
first, warm = [], []
for name in names:
    program = library.programs[name]
    for times in (first, warm):
        start = time.perf_counter()
        try:
            program.evaluate(ids, vocab)
        except Exception:  # a program failing on a window still paid its JIT
            pass
        times.append(time.perf_counter() - start)
print(json.dumps({"programs": len(names), "first": first, "warm": warm}))
"""


_PRECOMPILE = """
import json, sys
from attnc.compiler.jit_warmup import precompile_library
from attnc.runtime.library import load_library
library = load_library(sys.argv[1])
names = [n for n in library.names if library.records[n].backend == "numba"][:int(sys.argv[2])]
print(json.dumps(precompile_library(sys.argv[1], names, workers=int(sys.argv[3])).to_dict()))
"""


def _run(command: list[str], cache: Path) -> tuple[float, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def measure(programs: int, seed: int, first_use: int, work: Path) -> dict:
    """Write the programs, compile them cold, evaluate some cold and cached; the figures as a dict."""
    sources = paper_loop_sources(programs, seed)
    source_dir, library = work / "programs", work / "lib"
    source_dir.mkdir()
    for name, text in sources.items():
        (source_dir / f"{name}.py").write_text(text, encoding="utf-8")
    cache = Path(tempfile.mkdtemp(prefix="numba-cold-", dir=work))
    compile_s, stdout = _run([sys.executable, "-m", "attnc", "compile", str(source_dir), "-o", str(library),
                              "--json"], cache)
    report = json.loads(stdout)
    backends: dict[str, int] = {}
    for record in report["programs"]:
        key = record["backend"] if record["status"] == "ok" else "error"
        backends[key] = backends.get(key, 0) + 1
    kernels = len(json.loads((library / "manifest.json").read_text())["kernels"])
    figures = {"programs": programs, "seed": seed, "compile_wall_s": round(compile_s, 1),
               "compile_report_s": report["compile_s"], "backends": backends, "distinct_kernels": kernels,
               "numba_cache_entries_after_compile": sum(1 for _ in cache.rglob("*.nbi"))}
    if first_use:
        _, cold = _run([sys.executable, "-c", _FIRST_USE, str(library), str(first_use)], cache)
        _, cached = _run([sys.executable, "-c", _FIRST_USE, str(library), str(first_use)], cache)
        cold, cached = json.loads(cold), json.loads(cached)
        count = max(1, cold["programs"])
        # the first kernel also JIT-compiles the shared helpers (loop_runtime.py): reported apart
        later = [f - w for f, w in zip(cold["first"][1:], cold["warm"][1:])] or [cold["first"][0]]
        jit = statistics.median(later)
        figures.update({
            "first_use_programs": cold["programs"],
            "first_program_first_use_s": round(cold["first"][0], 2),
            "jit_s_per_kernel_median": round(jit, 3),
            "warm_s_per_program": round(sum(cold["warm"]) / count, 4),
            "cached_first_use_s_per_program": round(sum(cached["first"]) / count, 3),
            "eager_compile_estimate_s": round(compile_s + cold["first"][0] + jit * (kernels - 1), 1),
            "estimate_note": "eager (JIT at compile time, as before) = this compile + the first kernel's JIT "
                             "+ the median JIT x the other distinct kernels",
        })
        for workers in (1, 2):  # `attnc compile --jit N` on the same programs, each from an empty cache
            fresh = Path(tempfile.mkdtemp(prefix=f"numba-jit{workers}-", dir=work))
            seconds, out = _run([sys.executable, "-c", _PRECOMPILE, str(library), str(first_use), str(workers)],
                                fresh)
            figures[f"precompile_{workers}_workers_s"] = round(seconds, 1)
        figures["precompile_speedup_2_vs_1"] = round(figures["precompile_1_workers_s"]
                                                     / max(figures["precompile_2_workers_s"], 1e-9), 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=500, help="how many generated programs (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--first-use", type=int, default=20,
                        help="numba programs evaluated after the compile, cold and cached (0: skip)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (tables go to stderr)")
    parser.add_argument("--out", help="also write the JSON record to this file")
    parser.add_argument("--quick", action="store_true", help="12 programs, 2 evaluated (tests, smoke runs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.programs, args.first_use = min(args.programs, 12), min(args.first_use, 2)
    stream = table_stream(args.json)
    machine = describe_machine()
    load = os.getloadavg()
    print(f"{machine_line(machine)}; load average {load[0]:.2f} at start", file=stream, flush=True)
    with tempfile.TemporaryDirectory(prefix="attnc-compile-cold-") as tmp:
        figures = measure(args.programs, args.seed, args.first_use, Path(tmp))
    figures["load_average_start_end"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]
    for key, value in figures.items():
        print(f"{key:36s} {value}", file=stream)
    emit({"bench": "compile-cold", **figures, "machine": machine}, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
