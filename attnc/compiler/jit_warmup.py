"""JIT-compile a library's loop kernels ahead of use, in parallel processes (`attnc compile --jit`).

Compiling a library JIT-compiles nothing (loop kernels are compiled by numba
at their first `evaluate`). A user who wants the first scoring run to start
warm compiles them here instead: the numba programs of a library are split
among `workers` processes, each of which evaluates its programs once on a
probe window; numba writes every kernel to its on-disk cache
(kernel_store.numba_cache_dir), from which any later process loads it in
milliseconds instead of compiling it again.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


@dataclass
class JitReport:
    """What `precompile_library` did: kernels compiled, failures (name -> reason), seconds, workers."""

    compiled: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1

    def to_dict(self) -> dict:
        return {"compiled": len(self.compiled), "failed": self.failed, "seconds": round(self.seconds, 2),
                "workers": self.workers}


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def precompile_library(path: str | Path, names: Sequence[str] | None = None, workers: int | None = None
                       ) -> JitReport:
    """JIT-compile the numba programs of the library at `path` (all, or `names`) into numba's cache.

    Args:
        path: a library directory (attnc compile's output).
        names: programs to compile (default: every program whose backend is numba).
        workers: processes (default: the cores available); clamped to 1..the number of programs.

    Returns:
        The report; a program numba cannot compile is listed in `failed` (it runs interpreted).

    Raises:
        ValueError: workers < 1.
    """
    from attnc.runtime.library import load_library

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    library = load_library(path)
    wanted = [n for n in (names if names is not None else library.names) if library.records[n].backend == "numba"]
    workers = max(1, min(workers or default_workers(), len(wanted) or 1))
    chunks = [wanted[i::workers] for i in range(workers)]
    report = JitReport(compiled=[], workers=workers)
    if not wanted:
        return report
    if workers == 1:
        results = [_compile_chunk(str(path), wanted)]
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_compile_chunk, [str(path)] * workers, chunks))
    for compiled, failed in results:
        report.compiled += compiled
        report.failed.update(failed)
    report.seconds = time.perf_counter() - start
    return report


def _compile_chunk(path: str, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """In a worker: evaluate each program once on a probe window (numba compiles and caches its kernel)."""
    import warnings

    from attnc.compiler.compiled import WindowError
    from attnc.compiler.probing import probe_ids, probe_vocab
    from attnc.runtime.library import load_library

    library = load_library(path)
    compiled, failed = [], {}
    for name in names:
        program = library.programs[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a failed JIT is reported below
            try:
                program.evaluate(probe_ids()[:1], probe_vocab())
            except WindowError:  # failing on the probe window still compiled the kernel
                pass
        if program.backend == "numba":
            compiled.append(name)
        else:
            failed[name] = program.messages[-1]
    return compiled, failed
