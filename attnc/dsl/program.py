"""The record a validated program travels as, from the DSL to the compiler and runtime."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from typing import Literal

#: "native": `def name(q: int, k: int, w: Window) -> float` — the weight query q
#: gives key k, evaluated for every (q, k) pair of the window.
#: "paper": `def name(sentence: str, tokenizer) -> tuple[str, np.ndarray]` (or an
#: ndarray) — the form LLMs write in the paper's setting, building the n×n matrix.
ProgramForm = Literal["native", "paper"]


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class CheckedProgram:
    """A program that passed the grammar and validation.

    Attributes:
        name: the entry function's name (programs are always named by it).
        path: the source file, or "<string>".
        source: the exact source text that was validated.
        sha256: sha256 of `source` (UTF-8).
        form: which accepted signature the entry point has.
        module: a Python `ast.Module` built from the Lark parse tree. It holds
            only node types the grammar can produce, header imports removed, and
            is what the interpreter and the compiler consume.
        entry: the entry point's FunctionDef inside `module`.
        helpers: names of the other functions defined in the file.
        docstring: the entry point's docstring ("" if none).
        constants: names of the module-level constants (literal values,
            `ast.Assign` statements in `module`).
        declarations: the header lines the file declared (`import numpy as np`,
            ...); nothing was imported and they are not in `module`.
    """

    name: str
    path: str
    source: str
    sha256: str
    form: ProgramForm
    module: ast.Module
    entry: ast.FunctionDef
    helpers: tuple[str, ...]
    docstring: str
    constants: tuple[str, ...] = ()
    declarations: tuple[str, ...] = ()
