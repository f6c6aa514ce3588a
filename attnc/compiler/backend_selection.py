"""Pass 5: choose the backend a program runs on.

Rule for `backend="auto"`:

1. numpy, when the program has an array form (a loop-free native program):
   one vectorised pass over the whole [B, n, n] grid, no JIT cost. Measured
   on native starter programs (batch 64, raw kernel, 2-core CPU): numpy was
   1.2-35x faster per window than the same program as a numba loop kernel
   (e.g. induction at n=512: 1.7 ms vs 6.2 ms; content_words: 1.1 vs 40 ms)
   and 1.5-10x faster than torch on CPU.
2. numba, when it has a loop form (paper-form loops, native programs with
   `for`): compiled loops over token-id tables.
3. interpreted (attnc.dsl.run_reference) otherwise, with the reasons.

torch is never chosen automatically: it runs the same array kernel on torch
tensors (on any `device`), for callers that keep everything on a GPU. An
explicitly requested backend the program cannot use falls back to the
interpreter, and the manifest says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnc.compiler.support import SupportReport

BACKENDS = ("auto", "numpy", "numba", "torch", "interpreted")


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    message: str


def select_backend(report: SupportReport, requested: str) -> BackendChoice:
    """Pick a backend for a program given what its kernels support.

    Raises:
        ValueError: an unknown backend name.
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    family = {"numpy": "array", "torch": "array", "numba": "loop"}
    if requested == "interpreted":
        return BackendChoice("interpreted", "interpreted on request")
    if requested == "auto":
        if report.array is not None:
            return BackendChoice("numpy", "")
        if report.loop is not None:
            return BackendChoice("numba", f"no array form ({report.reasons.get('array', '')})")
        return BackendChoice("interpreted", "interpreted: " + "; ".join(
            f"{k} form: {v}" for k, v in report.reasons.items()))
    kernel = report.array if family[requested] == "array" else report.loop
    if kernel is not None:
        return BackendChoice(requested, "")
    return BackendChoice("interpreted", f"interpreted: {requested} unavailable: "
                         f"{report.reasons.get(family[requested], '')}")
