"""Checking candidate sources with the DSL before anything else touches them.

A candidate that fails here is never compiled, scored or run. The validator is
injected into the synthesis loop, so the loop can be tested without the DSL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from attnc.dsl.program import CheckedProgram


@dataclass(frozen=True)
class ValidationFailure:
    """Why a source was refused.

    Attributes:
        reason: "syntax" (does not parse) or "validation" (parses, breaks a rule).
        rules: the DSL rules that failed (`Diagnostic.rule`), for counting.
        messages: the diagnostics, as people read them.
    """

    reason: str
    rules: tuple[str, ...]
    messages: tuple[str, ...]


#: (source, path) -> the checked program, a failure, or a list of reasons (taken as "validation").
Validator = Callable[[str, str], Union[CheckedProgram, ValidationFailure, list]]


def dsl_validate(source: str, path: str) -> CheckedProgram | ValidationFailure:
    """Validate with `attnc.dsl.parse_program`; diagnostics become a ValidationFailure."""
    from attnc.dsl import ProgramError, parse_program

    try:
        return parse_program(source, path)
    except ProgramError as exc:
        rules = tuple(d.rule for d in exc.diagnostics) or ("unknown",)
        reason = "syntax" if all(rule == "syntax" for rule in rules) else "validation"
        return ValidationFailure(reason=reason, rules=rules, messages=tuple(str(d) for d in exc.diagnostics))


def as_failure(result: object) -> ValidationFailure | None:
    """None for a CheckedProgram; the failure otherwise (lists of reasons are wrapped)."""
    if isinstance(result, CheckedProgram):
        return None
    if isinstance(result, ValidationFailure):
        return result
    if isinstance(result, (list, tuple)):
        messages = tuple(str(m) for m in result) or ("rejected",)
        return ValidationFailure(reason="validation", rules=("unspecified",), messages=messages)
    raise TypeError(f"validator returned {type(result).__name__}; expected CheckedProgram, ValidationFailure or list")
