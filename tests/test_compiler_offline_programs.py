"""The offline synthesizer's programs (programs/offline/) compile and equal the reference interpreter.

tests/test_compiler_equivalence.py property-tests the hand-written programs;
these 500-odd generated ones are checked on fixed windows from a real
vocabulary instead: a stride sample by default (compiling all of them takes
about a minute), every one of them with `-m slow`.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from attnc.compiler import compile_program
from attnc.dsl import load_program, run_reference
from attnc.synth.offline_emit import E_LITERAL
from test_compiler_fixtures import PROGRAMS_DIR, interesting_ids, real_vocab

OFFLINE = sorted((PROGRAMS_DIR / "offline").rglob("*.py"))
SAMPLE_STRIDE = 12


def _windows() -> np.ndarray:
    """Two windows of 40 tokens: text-like repeats of real ids, and punctuation / newlines mixed in."""
    vocab = real_vocab()
    rng = np.random.default_rng(7)
    special = interesting_ids(vocab)
    pool = np.concatenate([rng.integers(0, vocab.size, size=12), special[:12]])
    return np.stack([rng.choice(pool, size=40), rng.choice(special, size=40)]).astype(np.int64)


def _check(paths) -> None:
    vocab, ids = real_vocab(), _windows()
    failures = []
    for path in paths:
        program = load_program(path)
        compiled = compile_program(program)
        got = compiled.evaluate(ids, vocab)
        for b in range(ids.shape[0]):
            expected = run_reference(program, ids[b], vocab)
            if not np.allclose(got[b], expected, rtol=0, atol=1e-6):
                failures.append(f"{path.relative_to(PROGRAMS_DIR)} [{compiled.backend}] on window {b} "
                                f"ids={ids[b].tolist()}: max diff {np.abs(got[b] - expected).max():.3g}")
    assert not failures, "\n".join(failures)


def test_the_offline_programs_are_there():
    assert len(OFFLINE) > 400  # programs/offline/README.md: 514 programs (w24 and w128)
    assert {p.parent.name for p in OFFLINE} == {"w24", "w128"}


def test_a_stride_sample_of_offline_programs_equals_the_reference():
    _check(OFFLINE[::SAMPLE_STRIDE])


@pytest.mark.slow
def test_every_offline_program_equals_the_reference():
    _check(OFFLINE)


def _weighted_terms(source: str) -> int:
    """Weighted terms of an emitted log-linear program: one `score = ...` line each, and each
    power-form factor of the return (`(k + 1.0) ** w`); a template is a mixture (one term per
    program it mixes)."""
    body = source.split('"""', 2)[-1]
    returned = next(line for line in body.splitlines() if line.strip().startswith("return "))
    if "score" not in returned:  # a template: `return 0.25 * (...) + 0.75 * (...)`
        return len(re.findall(r"(?:return|\+) [\d.]+ \* \(", returned))
    return len(re.findall(r"^\s+score = ", body, re.M)) + returned.count(" ** ") - returned.count(f"{E_LITERAL} ** ")


@pytest.mark.parametrize("folder", ["w128", "w24"])
def test_the_offline_programs_have_at_most_12_weighted_terms(folder):
    """programs/offline was synthesized with `--max-terms 12` (issue 12: readable programs)."""
    counts = {p.name: _weighted_terms(p.read_text()) for p in OFFLINE if p.parent.name == folder}
    assert counts and max(counts.values()) <= 12, sorted(counts.items(), key=lambda kv: -kv[1])[:5]
