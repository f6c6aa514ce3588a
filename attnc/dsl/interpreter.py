"""The reference interpreter: runs a checked program on one window.

It executes only the instrumented copy of the program's validated `ast.Module`
(instrument.py) with globals from `Sandbox.namespace()` (no real builtins),
then applies the output rule. Every backend is tested against this.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import numpy as np

from attnc.dsl.errors import GuardError, ProgramRuntimeError
from attnc.dsl.instrument import instrument
from attnc.dsl.program import CheckedProgram
from attnc.dsl.sandbox import ProgramWindow, Sandbox
from attnc.dsl.tokenizer_adapter import TokenizerAdapter
from attnc.output_rule import OutputContractError, apply_output_rule
from attnc.window import Vocab, Window

_CODE_CACHE: "weakref.WeakKeyDictionary[CheckedProgram, object]" = weakref.WeakKeyDictionary()


def _code(program: CheckedProgram):
    code = _CODE_CACHE.get(program)
    if code is None:
        code = compile(instrument(program.module), program.path, "exec")
        _CODE_CACHE[program] = code
    return code


def _native_matrix(entry, window: Window) -> np.ndarray:
    view = ProgramWindow(window)
    n = window.n
    raw = np.zeros((n, n), dtype=np.float64)
    for q in range(n):
        for k in range(n):
            value = entry(q, k, view)
            if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
                raw[q, k] = float(value)
            else:
                raise OutputContractError(f"entry point returned {type(value).__name__} for (q={q}, k={k}), "
                                          "expected a number")
    return raw


def _paper_matrix(entry, window: Window, sandbox: Sandbox) -> np.ndarray:
    result = entry(window.text, TokenizerAdapter(window, sandbox.charge))
    if isinstance(result, tuple):
        if len(result) != 2 or not isinstance(result[0], str):
            raise OutputContractError("entry point must return a matrix or (description, matrix)")
        result = result[1]
    if isinstance(result, list):
        result = np.array(result)
    if not isinstance(result, np.ndarray):
        raise OutputContractError(f"entry point returned {type(result).__name__}, expected an n x n array")
    return result


def run_reference(program: CheckedProgram, ids: Sequence[int], vocab: Vocab, *, causal: bool = True) -> np.ndarray:
    """Run a program on one window with the reference interpreter.

    Args:
        program: a validated program.
        ids: the window's token ids.
        vocab: the tokenizer's tables.
        causal: apply the causal mask (k <= q).

    Returns:
        float64 [n, n], row-stochastic after the output rule.

    Raises:
        ProgramRuntimeError: the program failed, broke the output contract, or
            was stopped by a guard (loop bound, work bound, allocation size).
    """
    window = Window(ids, vocab)
    sandbox = Sandbox(window.n, window.text)
    namespace = sandbox.namespace()
    try:
        with np.errstate(all="ignore"):  # NaN/inf are reported by the output rule, not as warnings
            return _run(program, namespace, window, causal, sandbox)
    except (Exception, GuardError) as exc:  # what the program raised or a guard refused, with its window
        raise ProgramRuntimeError(program.name, list(np.asarray(ids).reshape(-1)), exc, window.text,
                                  line=_program_line(exc, program.path)) from exc


def _run(program: CheckedProgram, namespace: dict, window: Window, causal: bool, sandbox: Sandbox) -> np.ndarray:
    exec(_code(program), namespace)  # the instrumented, validated AST only
    entry = namespace[program.name]
    raw = _native_matrix(entry, window) if program.form == "native" else _paper_matrix(entry, window, sandbox)
    return apply_output_rule(raw, causal=causal)


def _program_line(exc: BaseException, path: str) -> int | None:
    """The innermost line of the program's own code in the traceback, if any."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
