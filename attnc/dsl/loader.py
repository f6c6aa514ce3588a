"""Source text or files -> CheckedProgram (parse, then validate)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from attnc.dsl import limits
from attnc.dsl.errors import Diagnostic, ProgramError
from attnc.dsl.parse import parse_source
from attnc.dsl.program import CheckedProgram, source_sha256
from attnc.dsl.validate import validate_module


def parse_program(source: str | bytes, path: str = "<string>") -> CheckedProgram:
    """Parse and validate one program.

    Args:
        source: the program text (str, or bytes that must be UTF-8).
        path: shown in diagnostics.

    Returns:
        The checked program; its `module` is the AST that every consumer uses.

    Raises:
        ProgramError: with every problem found (only the first syntax error).
    """
    text, parsed = parse_source(source, path)
    validated, problems = validate_module(parsed.module, path, parsed.declared)
    problems = sorted(parsed.diagnostics + problems, key=lambda d: (d.line, d.col))
    if problems or validated is None:
        raise ProgramError(problems)
    return CheckedProgram(
        name=validated.entry.name, path=path, source=text, sha256=source_sha256(text), form=validated.form,
        module=parsed.module, entry=validated.entry, helpers=validated.helpers, docstring=validated.docstring,
        constants=validated.constants, declarations=tuple(parsed.headers),
    )


def load_program(path: str | Path) -> CheckedProgram:
    """Read and check one program file.

    Raises:
        ProgramError: unreadable, too large, or rejected.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.MAX_SOURCE_BYTES:
            raise ProgramError([Diagnostic(str(path), 1, 1, "size", f"program is {size} bytes, more than "
                                           f"{limits.MAX_SOURCE_BYTES}", "programs are small; split it")])
        data = path.read_bytes()
    except OSError as exc:
        raise ProgramError([Diagnostic(str(path), 1, 1, "file", f"cannot read program: {exc.strerror}", "")]) from None
    return parse_program(data, str(path))


def iter_program_files(paths: Iterable[str | Path]) -> list[Path]:
    """Program files named by `paths`: files as given, directories searched for `*.py` (sorted)."""
    files: list[Path] = []
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            files.extend(sorted(p for p in entry.rglob("*.py") if p.is_file()))
        else:
            files.append(entry)
    return files
