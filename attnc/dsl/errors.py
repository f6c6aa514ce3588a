"""Errors a program author sees: located diagnostics and run-time failures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a program, at a 1-based line and column.

    `rule` names the check that failed (e.g. "syntax", "name", "attribute"),
    so problems can be counted and looked up in docs/dsl.md.
    """

    path: str
    line: int
    col: int
    rule: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}:{self.col}: error: {self.message} [{self.rule}]"
        return f"{text}; hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "rule": self.rule,
            "message": self.message,
            "hint": self.hint,
        }


class ProgramError(Exception):
    """A program was rejected; `.diagnostics` lists every problem found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class ProgramRuntimeError(RuntimeError):
    """A validated program failed (or was stopped by a guard) on one window.

    Attributes:
        program_name: the entry function's name.
        ids: the window's token ids.
        cause: the underlying exception (a guard's `GuardError`, or what the
            program raised).
        text: the window's decoded text.
        line: the program line that was running, when known.
    """

    def __init__(self, program_name: str, ids: Sequence[int], cause: BaseException, text: str = "",
                 line: int | None = None):
        self.program_name = program_name
        self.line = line
        self.ids = [int(i) for i in ids]
        self.cause = cause
        self.text = text
        snippet = text if len(text) <= 60 else text[:57] + "..."
        where = f" (line {line})" if line else ""
        super().__init__(
            f"program {program_name!r}{where} failed on a window of {len(self.ids)} tokens "
            f"({snippet!r}): {type(cause).__name__}: {cause}"
        )


class GuardError(BaseException):
    """Raised inside the sandbox when a run-time guard stops a program.

    It derives from BaseException only, like KeyboardInterrupt: no class a
    program can name in an `except` clause (validation rejects bare `except:`
    and `BaseException`) matches it, and the instrumented code re-raises it
    from any handler as a second line of defence (instrument.py).
    """
