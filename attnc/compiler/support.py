"""Pass 4: which backends can run a program, and why not.

Like tracr's validating.py, this is a separate check that runs before any
backend is chosen: it tries each code generator on the IR and records either
the generated kernel or the reason it cannot be generated (for example
"a `for` loop (runs per (q, k) pair; needs a loop backend)" or "string
operation on two different tokens"). A program no generator accepts still
runs: interpreted, with the reasons recorded in the library manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from attnc.compiler.array_codegen import ArrayKernel, generate_array_kernel
from attnc.compiler.ir import UnsupportedError
from attnc.compiler.normalizing import NormalizedProgram


@dataclass
class SupportReport:
    """Kernels the program can be compiled to, and reasons for the others.

    Attributes:
        array: the array-form kernel (numpy and torch backends), or None.
        loop: the loop-form kernel (numba backend), or None.
        reasons: backend family ("array", "loop") -> why it is unavailable.
    """

    array: ArrayKernel | None = None
    loop: object | None = None
    reasons: dict[str, str] = field(default_factory=dict)


def check_support(program: NormalizedProgram, families: tuple[str, ...] = ("array", "loop")) -> SupportReport:
    """Try the code generators of `families` on `program`; never raises for unsupported code."""
    from attnc.compiler.numba_backend import generate_loop_kernel

    report = SupportReport()
    if "array" not in families:
        report.reasons["array"] = "not requested"
    elif program.expr is None:
        report.reasons["array"] = "; ".join(program.notes) or "no single expression of (q, k)"
    else:
        try:
            report.array = generate_array_kernel(program.expr, program.tables)
        except UnsupportedError as exc:
            report.reasons["array"] = str(exc)
    if "loop" not in families:
        report.reasons["loop"] = "not requested"
        return report
    try:
        report.loop = generate_loop_kernel(program)
    except UnsupportedError as exc:
        report.reasons["loop"] = str(exc)
    return report
