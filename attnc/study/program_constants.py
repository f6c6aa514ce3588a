"""A program's numeric constants as parameters: differentiable matrices, and source written back.

Loss-faithful tuning (attnc.study.tuning) fits the constants a program family
exposes — the weights of a log-linear program, a decay's base, an exponent —
by autograd. This module makes one program's constants into parameters:

- `tunable_literals`: the float literals of the source that are fitted
  constants. Structural constants stay fixed: 0.0, 1.0 and e (the base of an
  emitted ``e ** score``), and every integer (positions, offsets, counts).
- `ParametricProgram`: the program's torch kernel (the array form of
  attnc.compiler, the same kernel the torch backend runs) evaluated with those
  literals as tensors, so gradients reach them; which kernel constant each
  literal became is found by compiling the source once more with the
  literals replaced by marker values (a literal folded into something else
  is not tunable, and says so).
- `ParametricProgram.source_with(values)`: ordinary DSL source with the new
  constants, the entry function renamed, and a header line saying what it
  was tuned on; callers re-validate and compile it like any program.
"""

from __future__ import annotations

import io
import math
import tokenize
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from attnc.dsl import parse_program

#: Float literals that define a program's structure, not a fitted quantity.
FIXED_VALUES = (0.0, 1.0, math.e)
#: Marker values used to find where each literal lands among the kernel's constants: odd,
#: small enough for every literal context the validator allows (exponents are at most 64).
_MARK_BASE, _MARK_STEP = 0.3001234567, 0.0137
#: Decimals kept when tuned constants are written back (readable, and re-scored as written).
DECIMALS = 3


@dataclass(frozen=True)
class Literal:
    """A float literal in program source: 1-based line, 0-based [col, end_col) and its value."""

    line: int
    col: int
    end_col: int
    text: str
    value: float


def _is_float_token(text: str) -> bool:
    lowered = text.lower()
    return not lowered.endswith("j") and not lowered.startswith(("0x", "0o", "0b")) and (
        "." in lowered or "e" in lowered)


def tunable_literals(source: str) -> list[Literal]:
    """The float literals of `source` that are fitted constants, in source order."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.NUMBER or not _is_float_token(tok.string):
            continue
        value = float(tok.string)
        if any(math.isclose(value, fixed, rel_tol=0.0, abs_tol=1e-12) for fixed in FIXED_VALUES):
            continue
        if tok.start[0] != tok.end[0]:
            continue
        found.append(Literal(tok.start[0], tok.start[1], tok.end[1], tok.string, value))
    return found


def _replace_literals(source: str, literals: Sequence[Literal], texts: Sequence[str]) -> str:
    lines = source.splitlines(keepends=True)
    for lit, text in sorted(zip(literals, texts), key=lambda item: (item[0].line, item[0].col), reverse=True):
        row = lines[lit.line - 1]
        lines[lit.line - 1] = row[:lit.col] + text + row[lit.end_col:]
    return "".join(lines)


def _rename_entry(source: str, old: str, new: str) -> str:
    """`def old(` -> `def new(` (the entry function only: found by tokens, not text)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for before, tok in zip(tokens, tokens[1:]):
        if before.type == tokenize.NAME and before.string == "def" and tok.string == old:
            lines = source.splitlines(keepends=True)
            row = lines[tok.start[0] - 1]
            lines[tok.start[0] - 1] = row[:tok.start[1]] + new + row[tok.end[1]:]
            return "".join(lines)
    raise ValueError(f"no `def {old}(` in the program source")


def format_constant(value: float) -> str:
    """A tuned constant as written back: rounded, parenthesised when negative (`x * (-0.25)`)."""
    text = repr(round(float(value), DECIMALS))
    if text in ("-0.0", "0.0"):
        return "0.0001" if value >= 0 else "(-0.0001)"  # 0.0 would read as a fixed constant
    return f"({text})" if text.startswith("-") else text


class NotTunable(ValueError):
    """A program whose constants cannot be tuned (the reason is the message)."""


class ParametricProgram:
    """One program with its fitted constants as torch parameters.

    Attributes:
        name: the program's name (its library name).
        source: the original source.
        literals: the tunable literals, in source order; `values[i]` is literal i.
        initial: float64 [len(literals)] their values in the source.
    """

    def __init__(self, name: str, source: str, vocab, *, device: str = "cpu"):
        from attnc.compiler import compile_program

        self.name = name
        self.source = source
        self.vocab = vocab
        self.device = device
        self.program = parse_program(source, f"<{name}>")
        compiled = compile_program(self.program, backend="torch", device=device, probe=False)
        if compiled.backend != "torch" or compiled.kernel_source is None:
            raise NotTunable(f"{name}: has no array kernel ({'; '.join(compiled.messages) or compiled.backend})")
        literals = tunable_literals(source)
        if not literals:
            raise NotTunable(f"{name}: no tunable constants (only 0, 1, e and integers)")
        marks = [_MARK_BASE + _MARK_STEP * i for i in range(len(literals))]
        marked = compile_program(parse_program(_replace_literals(source, literals, [repr(m) for m in marks])),
                                 backend="torch", device=device, probe=False)
        if marked.kernel_source != compiled.kernel_source or len(marked.constants) != len(compiled.constants):
            raise NotTunable(f"{name}: its constants change the kernel's shape (folded by the compiler)")
        slots: list[tuple[int, int, float]] = []  # (kernel constant index, literal index, sign)
        mark_index = {m: i for i, m in enumerate(marks)}
        for j, (got, original) in enumerate(zip(marked.constants, compiled.constants)):
            if isinstance(got, float) and abs(got) in mark_index:
                slots.append((j, mark_index[abs(got)], math.copysign(1.0, got)))
                continue
            if got != original:
                raise NotTunable(f"{name}: kernel constant {j} is computed from a literal (folded)")
        used = sorted({i for _, i, _ in slots})
        if not used:
            raise NotTunable(f"{name}: no literal reaches the kernel as its own constant")
        # keep only literals that are parameters; renumber the slots
        renumber = {i: n for n, i in enumerate(used)}
        self.literals = [literals[i] for i in used]
        self._slots = [(j, renumber[i], s) for j, i, s in slots]
        self._constants = list(compiled.constants)
        self._kernel = compiled.kernel()
        self._tables = list(compiled.tables)
        self.initial = np.array([lit.value for lit in self.literals], dtype=np.float64)
        self._batches: dict[int, tuple] = {}

    def _inputs(self, ids: np.ndarray, key) -> tuple:
        from attnc.compiler.hoisting import build_table
        from attnc.window import window_features

        cached = self._batches.get(key) if key is not None else None
        if cached is None:
            cached = (window_features(ids, self.vocab), [build_table(spec, self.vocab) for spec in self._tables])
            if key is not None:
                self._batches[key] = cached
        return cached

    def matrices(self, ids: np.ndarray, values, *, key=None):
        """Row-stochastic causal matrices float64 [B, n, n] with constants `values` (a torch tensor).

        `key` names a window batch whose features are cached (tuning cycles over
        the same batches); None computes them afresh.

        Raises:
            attnc.output_rule.OutputContractError: the constants made the program non-finite.
        """
        from attnc.compiler.torch_backend import run_array_kernel_torch
        from attnc.output_rule import apply_output_rule_torch

        ids = np.asarray(ids, dtype=np.int64)
        features, tables = self._inputs(ids, key)
        constants = list(self._constants)
        for j, i, sign in self._slots:
            constants[j] = values[i] * sign
        raw = run_array_kernel_torch(self._kernel, constants, tables, features, self.device)
        return apply_output_rule_torch(raw, causal=True)

    def source_with(self, values: Sequence[float], new_name: str, note: str) -> str:
        """The source with constants `values` (rounded), entry renamed `new_name`, and a header `note`."""
        texts = [format_constant(v) for v in values]
        text = _rename_entry(_replace_literals(self.source, self.literals, texts), self.program.name, new_name)
        header = "".join(f"# {line}\n" for line in note.splitlines())
        return header + text

    def rounded(self, values: Sequence[float]) -> np.ndarray:
        """The constants as `source_with` writes them (what the written program computes)."""
        return np.array([float(format_constant(v).strip("()")) for v in values], dtype=np.float64)


def parametric_programs(sources: Mapping[str, str], vocab, device: str = "cpu"
                        ) -> tuple[dict[str, ParametricProgram], dict[str, str]]:
    """Build ParametricProgram for each name -> source; (tunable ones, name -> why not for the rest)."""
    tunable, skipped = {}, {}
    for name, source in sources.items():
        try:
            tunable[name] = ParametricProgram(name, source, vocab, device=device)
        except NotTunable as exc:
            skipped[name] = str(exc)
    return tunable, skipped
