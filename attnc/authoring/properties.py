"""Property tests for one program over generated windows (`attnc check --props`).

For every generated window (attnc/authoring/windows.py) a program must:

==============================  ===========================================================
property                        holds when
==============================  ===========================================================
``runs``                        the reference interpreter runs it without a run-time error
``shape``                       the raw matrix is n x n
``finite``                      the raw matrix has no NaN or inf
``non-negative``                the raw matrix has no negative weight (checked on the raw
                                matrix of each compiled kernel; see below)
``causal``                      the raw matrix puts no weight above the diagonal beyond the
                                row's uniform floor, and the normalised output none at all
``row-stochastic``              every normalised row sums to 1 and is non-negative
``deterministic``               two runs on the same window give the same matrix
``compiled-matches-reference``  every compiled backend (numpy, numba, torch: those the
                                program compiles to) equals `run_reference` to 1e-6
==============================  ===========================================================

Design decision: the output rule clips negative weights and masks the upper
triangle, so the *normalised* output of a program that writes above the
diagonal still looks fine. Such a program is nevertheless wrong (it reads the
future, or mixes up q and k), so ``causal`` and ``non-negative`` are checked
on the RAW matrix and fail. One exception: a uniform floor over the whole row
(the paper form's `out += 1e-4` smoothing) is not a preference for any key, so
an above-diagonal weight fails only when it exceeds the row's smallest weight.
Above-diagonal writes are seen through `run_reference(..., causal=False)`,
which only scales each row of the raw matrix (rows with a positive sum); negative raw
weights are seen in the compiled kernels' raw matrices, so a program that only
runs interpreted is not checked for them.

Hypothesis searches the windows and shrinks a failing one; the report names
the property and the shrunk window as token ids and text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings
from hypothesis import seed as hypothesis_seed

from attnc.authoring.windows import MAX_WINDOW, VocabPools, edge_case_windows, window_strategy
from attnc.dsl import CheckedProgram, ProgramError, ProgramRuntimeError, iter_program_files, load_program, run_reference
from attnc.output_rule import OutputContractError
from attnc.window import Vocab

#: Property names, in the order they are checked on a window.
PROPERTIES = ("runs", "shape", "finite", "non-negative", "causal", "row-stochastic", "deterministic",
              "compiled-matches-reference")
#: Compiled backends compared with the reference interpreter.
BACKENDS = ("numpy", "numba", "torch")
#: Largest difference allowed between a compiled backend and the reference.
TOLERANCE = 1e-6
#: Default number of generated windows per program (explicit edge cases come on top).
DEFAULT_EXAMPLES = 60
#: A compiled raw weight below this is a negative weight (kernels may round differently).
NEGATIVE_EPS = 1e-12


class PropertyViolation(AssertionError):
    """One property failed on one window (raised inside the hypothesis search).

    Attributes:
        prop: the property's name (one of PROPERTIES).
        detail: what is wrong, for a person ("row 2 puts 0.5 on key 3").
        ids: the window's token ids.
    """

    def __init__(self, prop: str, detail: str, ids: Sequence[int]):
        self.prop, self.detail, self.ids = prop, detail, [int(i) for i in ids]
        super().__init__(f"property {prop!r} failed on window ids={self.ids}: {detail}")


@dataclass
class PropertyReport:
    """The outcome of property-testing one program file.

    Attributes:
        path: the program file.
        program: the entry point's name ("" when the file did not load).
        ok: every property held on every window tried.
        windows: windows the program was run on (generated, edge cases and shrinking).
        backends: compiled backends compared with the reference.
        failed_property: the failing property's name, None when ok.
        detail: what was wrong on the counterexample (or why the file did not load).
        ids: the shrunk counterexample's token ids.
        text: the counterexample decoded with the vocabulary.
        vocab: the vocabulary's name.
    """

    path: str
    program: str
    ok: bool
    windows: int = 0
    backends: tuple[str, ...] = ()
    failed_property: str | None = None
    detail: str = ""
    ids: list[int] | None = None
    text: str | None = None
    vocab: str = ""
    compile_messages: list[str] = field(default_factory=list)

    def message(self) -> str:
        """One line for a person: the failure with its counterexample, or what passed."""
        if self.ok:
            backends = ", ".join(self.backends) or "none (interpreted)"
            return (f"{self.path}: ok: {len(PROPERTIES)} properties held on {self.windows} windows "
                    f"(vocab {self.vocab}; compiled backends checked: {backends})")
        if self.ids is None:
            return f"{self.path}: property {self.failed_property!r} failed: {self.detail}"
        return (f"{self.path}: property {self.failed_property!r} failed on window "
                f"ids={_short_ids(self.ids)} text={_short_text(self.text or '')}: {self.detail}")

    def to_dict(self) -> dict:
        return {
            "path": self.path, "program": self.program, "ok": self.ok, "windows": self.windows,
            "backends": list(self.backends), "failed_property": self.failed_property, "detail": self.detail,
            "ids": self.ids, "text": self.text, "vocab": self.vocab, "compile_messages": self.compile_messages,
        }


def _short_ids(ids: list[int], limit: int = 64) -> str:
    if len(ids) <= limit:
        return str(ids)
    return f"[{', '.join(str(i) for i in ids[:limit])}, ... ({len(ids)} tokens)]"


def _short_text(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@lru_cache(maxsize=1)
def builtin_vocab() -> Vocab:
    """The default vocabulary: the tiny byte-level BPE tokenizer's (498 tokens, no model needed)."""
    from attnc.runtime.models import tiny_tokenizer

    return Vocab.from_tokenizer(tiny_tokenizer())


# ---- the checks on one window ------------------------------------------------------------------

def _first_cell(mask: np.ndarray) -> tuple[int, int]:
    row, col = np.argwhere(mask)[0]
    return int(row), int(col)


def _reference(program: CheckedProgram, ids: list[int], vocab: Vocab, causal: bool) -> np.ndarray:
    """run_reference, with its errors turned into the property they break."""
    try:
        return run_reference(program, ids, vocab, causal=causal)
    except ProgramRuntimeError as exc:
        cause = exc.cause
        where = f" (line {exc.line})" if exc.line else ""
        if isinstance(cause, OutputContractError):
            text = str(cause)
            prop = "shape" if "shape" in text else "finite" if ("NaN" in text or "inf" in text) else "runs"
            raise PropertyViolation(prop, f"raw output: {text}", ids) from exc
        raise PropertyViolation("runs", f"run-time error{where}: {type(cause).__name__}: {cause}", ids) from exc


def _check_normalised(matrix: np.ndarray, ids: list[int], who: str) -> None:
    n = len(ids)
    if matrix.shape != (n, n):
        raise PropertyViolation("shape", f"{who} output has shape {matrix.shape}, expected ({n}, {n})", ids)
    if not np.isfinite(matrix).all():
        row, col = _first_cell(~np.isfinite(matrix))
        raise PropertyViolation("finite", f"{who} output row {row} has {matrix[row, col]} on key {col}", ids)
    above = np.triu(matrix, 1) != 0
    if above.any():
        row, col = _first_cell(above)
        raise PropertyViolation("causal", f"{who} output row {row} puts {matrix[row, col]:.6g} on key {col}", ids)
    if (matrix < 0).any():
        row, col = _first_cell(matrix < 0)
        raise PropertyViolation("row-stochastic", f"{who} output row {row} has {matrix[row, col]:.6g} "
                                f"on key {col}", ids)
    sums = matrix.sum(axis=1)
    bad = np.abs(sums - 1.0) > 1e-9
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PropertyViolation("row-stochastic", f"{who} output row {row} sums to {sums[row]:.9g}", ids)


def _check_same(first: np.ndarray, second: np.ndarray, tolerance: float) -> tuple[int, int] | None:
    if first.shape != second.shape:
        return (-1, -1)
    diff = np.abs(first - second) > tolerance
    return _first_cell(diff) if diff.any() else None


def check_window(program: CheckedProgram, compiled: Sequence, ids: list[int], vocab: Vocab) -> None:
    """Check every property of `program` on one window.

    Args:
        program: the checked program.
        compiled: `CompiledProgram`s of the program, one per backend to compare.
        ids: the window's token ids.
        vocab: the vocabulary the ids belong to.

    Raises:
        PropertyViolation: the first property that fails, with what went wrong.
    """
    unmasked = _reference(program, ids, vocab, causal=False)
    floor = unmasked.min(axis=1, keepdims=True)  # a uniform floor (`out += 1e-4`) is not a preference
    above = np.triu(unmasked > floor * (1.0 + 1e-9) + 1e-15, 1)
    if above.any():
        row, col = _first_cell(above)
        raise PropertyViolation(
            "causal", f"raw output writes above the diagonal: row {row} puts {unmasked[row, col]:.6g} on key "
            f"{col} > {row} (normalised without the mask): the runtime masks it, but the program is wrong", ids)
    reference = _reference(program, ids, vocab, causal=True)
    _check_normalised(reference, ids, "reference")
    again = _reference(program, ids, vocab, causal=True)
    cell = _check_same(reference, again, 0.0)
    if cell is not None:
        row, col = cell
        raise PropertyViolation("deterministic", f"two reference runs differ at row {row}, key {col}: "
                                f"{reference[row, col]:.9g} then {again[row, col]:.9g}", ids)
    batch = np.asarray(ids, dtype=np.int64)[None, :]
    for kernel in compiled:
        _check_compiled(kernel, batch, reference, ids, vocab)


def _check_compiled(kernel, batch: np.ndarray, reference: np.ndarray, ids: list[int], vocab: Vocab) -> None:
    who = f"backend {kernel.backend}"
    try:
        out = kernel.evaluate(batch, vocab)[0]
        raw = kernel.raw(batch, vocab)[0]
    except ProgramRuntimeError as exc:
        raise PropertyViolation("compiled-matches-reference", f"{who} failed where the reference runs: "
                                f"{type(exc.cause).__name__}: {exc.cause}", ids) from exc
    negative = raw < -NEGATIVE_EPS
    if negative.any():
        row, col = _first_cell(negative)
        raise PropertyViolation("non-negative", f"raw output ({who}) row {row} has {raw[row, col]:.6g} on key "
                                f"{col}: the runtime clips it to 0, but the program is wrong", ids)
    cell = _check_same(out, reference, TOLERANCE)
    if cell is not None:
        row, col = cell
        got = f"{out[row, col]:.9g}" if row >= 0 else f"shape {out.shape}"
        want = f"{reference[row, col]:.9g}" if row >= 0 else f"shape {reference.shape}"
        raise PropertyViolation("compiled-matches-reference", f"{who} gives {got} at row {row}, key {col}; "
                                f"the reference gives {want}", ids)
    again = kernel.evaluate(batch, vocab)[0]
    cell = _check_same(out, again, 0.0)
    if cell is not None:
        raise PropertyViolation("deterministic", f"two {who} runs differ at row {cell[0]}, key {cell[1]}", ids)


# ---- the search ----------------------------------------------------------------------------------

def compile_backends(program: CheckedProgram, backends: Sequence[str] = BACKENDS) -> tuple[list, list[str]]:
    """Compile `program` for each backend it supports.

    Returns:
        (compiled programs whose backend is the one asked for, messages about
        backends that fell back to the interpreter or failed to compile).
    """
    from attnc.compiler import compile_program

    compiled, messages = [], []
    for backend in backends:
        try:
            kernel = compile_program(program, backend=backend)
        except Exception as exc:  # a compiler crash is reported with the program, not hidden
            messages.append(f"{backend}: compile failed: {type(exc).__name__}: {exc}")
            continue
        if kernel.backend == backend:
            compiled.append(kernel)
        else:
            messages.append(f"{backend}: " + "; ".join(kernel.messages))
    return compiled, messages


def search_counterexample(check: Callable[[list[int]], None], pools: VocabPools, *, examples: int = DEFAULT_EXAMPLES,
                          seed: int = 0, max_len: int = MAX_WINDOW) -> PropertyViolation | None:
    """Run `check` on the edge-case windows and `examples` generated ones; shrink a failure.

    Args:
        check: raises PropertyViolation when a window breaks a property.
        pools: the vocabulary's id groups.
        examples: generated windows (hypothesis `max_examples`).
        seed: hypothesis seed: same seed, same windows.
        max_len: longest generated window.

    Returns:
        The violation on the shrunk counterexample, or None when every window passed.
    """
    strategy = window_strategy(pools, max_len)

    def holds_on(ids: list[int]) -> None:
        check(ids)

    common = dict(deadline=None, database=None, report_multiple_bugs=False, print_blob=False,
                  suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    # Generated windows first, so a failure is shrunk; then the edge cases (run as they are).
    generated = settings(max_examples=examples, phases=(Phase.generate, Phase.shrink), **common)(
        given(strategy)(holds_on))
    explicit = given(strategy)(holds_on)
    for ids in reversed(list(edge_case_windows(pools).values())):
        explicit = example(ids)(explicit)
    explicit = settings(phases=(Phase.explicit,), **common)(explicit)
    for search in (generated, explicit):
        try:
            hypothesis_seed(seed)(search)()
        except PropertyViolation as violation:
            return violation
    return None


def check_program_properties(program: CheckedProgram, vocab: Vocab | None = None, *,
                             examples: int = DEFAULT_EXAMPLES, seed: int = 0, max_len: int = MAX_WINDOW,
                             backends: Sequence[str] = BACKENDS) -> PropertyReport:
    """Property-test one program over generated windows.

    Args:
        program: a checked program.
        vocab: the vocabulary windows are drawn from; `builtin_vocab()` when None.
        examples: generated windows (edge cases come on top).
        seed: hypothesis seed.
        max_len: longest generated window (1..512 by default).
        backends: compiled backends to compare with the reference.

    Returns:
        The report; `ok` is False with the shrunk counterexample when a property failed.
    """
    vocab = vocab if vocab is not None else builtin_vocab()
    compiled, messages = compile_backends(program, backends)
    runs = 0

    def check(ids: list[int]) -> None:
        nonlocal runs
        runs += 1
        check_window(program, compiled, ids, vocab)

    violation = search_counterexample(check, VocabPools.from_vocab(vocab), examples=examples, seed=seed,
                                      max_len=max_len)
    report = PropertyReport(path=program.path, program=program.name, ok=violation is None, windows=runs,
                            backends=tuple(k.backend for k in compiled), vocab=vocab.name,
                            compile_messages=messages)
    if violation is not None:
        report.failed_property, report.detail = violation.prop, violation.detail
        report.ids, report.text = violation.ids, vocab.decode(violation.ids)
    return report


def check_properties(paths: Sequence[str | Path], vocab: Vocab | None = None, **options) -> list[PropertyReport]:
    """Property-test every program file under `paths` (files or directories of *.py).

    A file that does not validate gets a failed report with property "valid"
    and its diagnostics. `options` are those of `check_program_properties`.
    """
    vocab = vocab if vocab is not None else builtin_vocab()
    reports = []
    for path in iter_program_files([str(p) for p in paths]):
        try:
            program = load_program(path)
        except ProgramError as exc:
            reports.append(PropertyReport(path=str(path), program="", ok=False, failed_property="valid",
                                          detail=str(exc).replace("\n", "; "), vocab=vocab.name))
            continue
        reports.append(check_program_properties(program, vocab, **options))
    return reports
