"""Every backend equals the reference interpreter (attnc.dsl.run_reference) to 1e-6.

Property: for any window of token ids from a real tokenizer's vocabulary, and
for every program in programs/ plus generated ones, the compiled matrices equal
the interpreter's; a window on which the interpreter fails makes the compiled
program fail too (never a silent zero matrix). Failures name the program and
the window (ids and text).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attnc.compiler import WindowError, compile_program
from attnc.dsl import ProgramRuntimeError, load_program, parse_program, run_reference
from test_compiler_fixtures import PROGRAMS_DIR, generated_programs, interesting_ids, real_vocab

VOCAB = real_vocab()
SPECIAL = interesting_ids(VOCAB)


def _all_programs():
    programs = [load_program(p) for p in sorted(PROGRAMS_DIR.glob("*.py"))]
    programs += [parse_program(src, f"<generated {name}>") for name, src in generated_programs()]
    return programs


PROGRAMS = _all_programs()


def _compiled(backend: str, programs=None):
    out = []
    for program in PROGRAMS if programs is None else programs:
        compiled = compile_program(program, backend=backend)
        if compiled.backend == backend:
            out.append(compiled)
    return out


@st.composite
def windows(draw, max_len: int = 48):
    """Token ids drawn from a small pool (so tokens repeat), mixing real-vocab ids and punctuation."""
    pool_size = draw(st.integers(1, 24))
    pool = draw(st.lists(st.one_of(st.integers(0, VOCAB.size - 1), st.sampled_from(SPECIAL.tolist())),
                         min_size=pool_size, max_size=pool_size))
    n = draw(st.integers(1, max_len))
    picks = draw(st.lists(st.integers(0, pool_size - 1), min_size=n, max_size=n))
    return np.array([pool[i] for i in picks], dtype=np.int64)


def _check(compiled_programs, ids: np.ndarray, causal: bool = True) -> None:
    batch = np.stack([ids, ids[::-1].copy()])
    failures = []
    for compiled in compiled_programs:
        program = compiled.program
        refs, ref_errors = [], []
        for row in batch:
            try:
                refs.append(run_reference(program, row, VOCAB, causal=causal))
                ref_errors.append(None)
            except ProgramRuntimeError as exc:
                refs.append(None)
                ref_errors.append(exc)
        where = f"program {program.name!r} [{compiled.backend}] on window ids={ids.tolist()} " \
                f"text={VOCAB.decode(ids)!r}"
        if any(e is not None for e in ref_errors):
            first_bad = next(i for i, e in enumerate(ref_errors) if e is not None)
            with pytest.raises(WindowError) as info:
                compiled.evaluate(batch, VOCAB, causal=causal)
            if info.value.window != first_bad:
                failures.append(f"{where}: failed on window {info.value.window}, reference on {first_bad}")
            continue
        try:
            got = compiled.evaluate(batch, VOCAB, causal=causal)
        except WindowError as exc:
            failures.append(f"{where}: compiled failed but the reference did not: {exc}")
            continue
        diff = float(np.abs(got - np.stack(refs)).max())
        if not diff <= 1e-6:
            failures.append(f"{where}: max |compiled - reference| = {diff:.3g}")
    assert not failures, "\n".join(failures)


NUMPY = _compiled("numpy")
TORCH = _compiled("torch")
AUTO = {p.name: compile_program(p).backend for p in PROGRAMS}
# numba: every program auto-compiles to numba, plus every 4th native program (JIT and reference time).
NUMBA = _compiled("numba", [p for i, p in enumerate(PROGRAMS)
                            if AUTO[p.name] == "numba" or (p.form == "native" and i % 4 == 0)])
SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_backends_cover_the_starter_programs():
    auto = AUTO
    interpreted = {k for k, v in auto.items() if v == "interpreted"}
    assert interpreted == {"gen_paper_conditional_local"}, interpreted  # a local that may hold a stale token
    assert {"numpy", "numba"} <= set(auto.values())
    assert len(NUMPY) >= 30 and len(TORCH) == len(NUMPY) and len(NUMBA) >= 15


@SETTINGS
@given(ids=windows())
@example(ids=np.array([0], dtype=np.int64))
@example(ids=np.resize(SPECIAL, 128))
def test_numpy_backend_equals_reference(ids):
    _check(NUMPY, ids)


@SETTINGS
@given(ids=windows(max_len=24), causal=st.booleans())
def test_torch_backend_equals_reference(ids, causal):
    _check(TORCH, ids, causal=causal)


@SETTINGS
@given(ids=windows())
@example(ids=np.resize(SPECIAL, 160))
def test_numba_backend_equals_reference(ids):
    _check(NUMBA, ids)
