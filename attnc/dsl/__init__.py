"""attnc.dsl: the safe program language — parse, validate, run.

Public API:
    parse_program(source, path) -> CheckedProgram      (raises ProgramError)
    load_program(path) -> CheckedProgram
    iter_program_files(paths) -> list[Path]
    run_reference(program, ids, vocab, causal=True) -> np.ndarray
"""

from __future__ import annotations

from attnc.dsl.errors import Diagnostic, ProgramError, ProgramRuntimeError
from attnc.dsl.interpreter import run_reference
from attnc.dsl.loader import iter_program_files, load_program, parse_program
from attnc.dsl.program import CheckedProgram

__all__ = [
    "CheckedProgram", "Diagnostic", "ProgramError", "ProgramRuntimeError",
    "iter_program_files", "load_program", "parse_program", "run_reference",
]
