"""Compile a checked program: the compiler as the pipeline of its passes.

    checked program
      -> interpreter_only_constructs (constructs.py: while, try, closures, re, ... -> interpreted)
      -> lower_program            (lowering.py: constants and helpers inlined)
      -> normalize_program        (normalizing.py: window reads and tokenizer idioms -> IR nodes)
      -> encode_labels            (labels.py: syntax label comparisons -> integer code comparisons)
      -> hoist_program            (hoisting.py: token-string expressions -> per-vocab tables)
      -> check_support            (support.py: which kernels can be generated, and why not)
      -> select_backend           (backend_selection.py: numpy | numba | torch | interpreted)
      -> probe_program            (probing.py windows, no JIT: measure sparse K; numba JITs at first use)
      -> CompiledProgram          (compiled.py: kernel + batch API)

Nothing valid is lost: a program the passes cannot handle runs interpreted
(attnc.dsl.run_reference), and `messages` says why.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

from attnc.compiler.backend_selection import BACKENDS, select_backend
from attnc.compiler.compiled import CompiledProgram, WindowError
from attnc.compiler.constructs import interpreter_only_constructs
from attnc.compiler.hoisting import hoist_program
from attnc.compiler.ir import Feature, UnsupportedError
from attnc.compiler.labels import encode_labels
from attnc.compiler.lowering import lower_program
from attnc.compiler.normalizing import normalize_program
from attnc.compiler.probing import probe_ids, probe_vocab
from attnc.compiler.support import check_support
from attnc.dsl.program import CheckedProgram


def compile_program(program: CheckedProgram, *, backend: str = "auto", kernel_dir: Path | None = None,
                    device: str = "cpu", probe: bool = True) -> CompiledProgram:
    """Compile a validated program to a kernel for `backend`.

    Args:
        program: output of attnc.dsl.parse_program / load_program.
        backend: "auto", "numpy", "numba", "torch" or "interpreted"
            (see backend_selection.py for the auto rule).
        kernel_dir: where loop (numba) kernel files go; default
            kernel_store.default_kernel_dir().
        device: torch device for the torch backend.
        probe: run the kernel on the probe windows (sparse K, failures noted;
            no JIT). A library load skips it.

    Returns:
        The compiled program; `backend == "interpreted"` when no kernel could
        be generated (the reasons are in `messages`).

    Raises:
        ValueError: unknown backend name.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    start = time.perf_counter()
    constructs = interpreter_only_constructs(program)
    if constructs:
        return CompiledProgram(program, "interpreted", None,
                               messages=("interpreted: uses " + ", ".join(constructs),),
                               compile_s=time.perf_counter() - start, kernel_dir=kernel_dir, device=device)
    try:
        lowered = lower_program(program)
        normalized = encode_labels(normalize_program(lowered))
        hoisted = hoist_program(normalized)
    except UnsupportedError as exc:
        return CompiledProgram(program, "interpreted", None, messages=(f"interpreted: {exc}",),
                               compile_s=time.perf_counter() - start, kernel_dir=kernel_dir, device=device)
    families = {"numpy": ("array",), "torch": ("array",), "numba": ("loop",)}.get(backend, ("array", "loop"))
    report = check_support(hoisted, families)
    choice = select_backend(report, backend)
    kernel = {"numpy": report.array, "torch": report.array, "numba": report.loop}.get(choice.backend)
    compiled = CompiledProgram(
        program=program,
        backend=choice.backend,
        kernel_source=kernel.source if kernel is not None else None,
        constants=kernel.constants if kernel is not None else (),
        tables=tuple(hoisted.tables),
        messages=tuple(m for m in (choice.message,) if m),
        kernel_dir=kernel_dir,
        device=device,
        reads=features_read(hoisted),
    )
    if probe:
        compiled = probe_program(compiled)
    compiled.compile_s = time.perf_counter() - start
    return compiled


def features_read(program) -> tuple[str, ...]:
    """Names of the window features (besides ids) a normalized program reads, sorted."""
    nodes = list(program.body) + ([program.expr] if program.expr is not None else [])
    return tuple(sorted({node.name for root in nodes for node in ast.walk(root)
                         if isinstance(node, Feature) and node.name != "ids"}))


def probe_program(compiled: CompiledProgram) -> CompiledProgram:
    """Run the kernel on the probe windows (no JIT: CompiledProgram.probe_evaluate) and measure the sparse K.

    A program failing on a probe window keeps its backend, with a note. A loop
    kernel numba cannot type is found at its first `evaluate` and then runs
    interpreted (CompiledProgram._jit_failed).
    """
    if compiled.backend == "interpreted":
        return compiled
    try:
        dense = compiled.probe_evaluate(probe_ids(), probe_vocab())
    except WindowError as exc:
        compiled.messages += (f"note: fails on a probe window: {exc}",)
        return compiled
    support = int((dense != 0).sum(axis=-1).max())
    compiled.sparse_k = support if support <= max(1, dense.shape[-1] // 4) else None
    return compiled
