"""A ProgramSource that is a library plus programs compiled in memory.

Tuning writes new programs (a head's program with its own constants); a study
or `attnc tune` uses them at once, beside the compiled library they came from,
without rebuilding that library: names the overlay holds are evaluated from its
own compiled programs, every other name is asked of the base source (with its
optional sparse and window-independence protocols, see attnc.runtime.surrogate).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from attnc.compiler import CompiledProgram, compile_program
from attnc.compiler.compiled import evaluate_library
from attnc.dsl import parse_program


class OverlaySource:
    """`base` (a Library or any ProgramSource) extended by `programs` (name -> CompiledProgram)."""

    def __init__(self, base, programs: Mapping[str, CompiledProgram], vocab):
        clash = sorted(set(programs) & set(getattr(base, "names", ())))
        if clash:
            raise ValueError(f"overlay programs shadow library programs: {', '.join(clash[:5])}")
        self.base = base
        self.extra = dict(programs)
        self.vocab = vocab

    @classmethod
    def from_sources(cls, base, sources: Mapping[str, str], vocab, *, backend: str = "auto") -> "OverlaySource":
        """Validate and compile name -> DSL source (a name must be the source's entry function)."""
        compiled = {}
        for name, text in sources.items():
            program = parse_program(text, f"<{name}>")
            if program.name != name:
                raise ValueError(f"source for {name!r} defines {program.name!r}")
            compiled[name] = compile_program(program, backend=backend, probe=False)
        return cls(base, compiled, vocab)

    @classmethod
    def extending(cls, library, sources: Mapping[str, str]):
        """`library` itself when there are no `sources`, else the library plus them (compiled here)."""
        return cls.from_sources(library, sources, library.vocab) if sources else library

    @property
    def names(self) -> list[str]:
        return sorted({*getattr(self.base, "names", ()), *self.extra})

    def matrices(self, names: Sequence[str], ids: np.ndarray) -> dict[str, np.ndarray]:
        ours = [n for n in names if n in self.extra]
        theirs = [n for n in names if n not in self.extra]
        out = dict(self.base.matrices(theirs, ids)) if theirs else {}
        if ours:
            result = evaluate_library([self.extra[n] for n in ours], ids, self.vocab, causal=True)
            if result.errors:
                raise result.exceptions[next(iter(result.errors))]
            out.update(result.matrices)
        return out

    def sparse_matrices(self, names: Sequence[str], ids: np.ndarray) -> dict:
        theirs = [n for n in names if n not in self.extra]
        if theirs and hasattr(self.base, "sparse_matrices"):
            return dict(self.base.sparse_matrices(theirs, ids))
        return {}

    def window_independent(self, name: str) -> bool:
        if name in self.extra:
            return self.extra[name].window_independent
        return bool(getattr(self.base, "window_independent", lambda _: False)(name))
