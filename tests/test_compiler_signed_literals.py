"""Signed number literals (`-1`: a unary minus over a constant in Python's AST) are one constant to the compiler.

Lowering folds them, so `x in (-1, -2)` is a literal set every backend compiles
(it used to run interpreted), and a negated module constant is a literal too.
Each compiled kernel must equal the interpreter on random windows.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.compiler import compile_program
from attnc.compiler.probing import probe_vocab
from attnc.dsl import parse_program, run_reference

NATIVE = {
    "signed_members": "    return 1.0 if (k - q) in (-1, -2) else 0.0\n",
    "signed_not_in": "    return 0.0 if (q - k) not in {-0.0, 1, -3} else 2.0\n",
    "signed_compare": "    d = k - q\n    return 1.0 if d == -1 or d < -3 else -0.25\n",
    "nested_signs": "    return 1.0 if (k - q) in [-(-1), +(-2), - - -3] else 0.0\n",
}

#: A module constant negated where it is read: substituted, then folded.
MODULE_CONSTANT = '''OFFSET = 2


def {name}(q: int, k: int, w: Window) -> float:
    """Attends to the key OFFSET tokens back, or three ahead."""
    return 1.0 if (k - q) in (-OFFSET, 3) else 0.0
'''

PAPER = '''import numpy as np


def {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            if j - i in (-1, -2):
                out[i, j] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "previous two tokens", out
'''


def _programs():
    for name, body in NATIVE.items():
        yield name, parse_program(f"def {name}(q: int, k: int, w: Window) -> float:\n"
                                  f'    """Probe: {name}."""\n{body}')
    yield "module_constant", parse_program(MODULE_CONSTANT.format(name="module_constant"))


PROGRAMS = dict(_programs())


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("backend", ["numpy", "torch", "numba"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_signed_literals_compile_and_equal_the_interpreter(name, backend, n, seed):
    compiled = compile_program(PROGRAMS[name], backend=backend, probe=False)
    assert compiled.backend == backend, compiled.messages
    vocab = probe_vocab()
    ids = np.random.default_rng(seed).integers(0, len(vocab.tokens), size=(2, n))
    want = np.stack([run_reference(compiled.program, row, vocab) for row in ids])
    np.testing.assert_allclose(compiled.evaluate(ids, vocab), want, atol=1e-9, rtol=0)


@pytest.mark.parametrize("n", [1, 9])
def test_a_paper_loop_with_signed_members_compiles_to_numba(n):
    compiled = compile_program(parse_program(PAPER.format(name="previous_two")))
    assert compiled.backend == "numba", compiled.messages
    vocab = probe_vocab()
    ids = np.random.default_rng(n).integers(0, len(vocab.tokens), size=(2, n))
    want = np.stack([run_reference(compiled.program, row, vocab) for row in ids])
    np.testing.assert_allclose(compiled.evaluate(ids, vocab), want, atol=1e-9, rtol=0)


def test_a_negated_bool_is_not_folded_and_still_equals_the_interpreter():
    # -True is -1 in Python; it is no number literal, so it is left to whatever backend takes it
    program = parse_program('def negbool(q: int, k: int, w: Window) -> float:\n    """Probe."""\n'
                            "    return 1.0 if (k - q) in (-True, 2) else 0.0\n")
    compiled = compile_program(program, probe=False)
    vocab = probe_vocab()
    ids = np.random.default_rng(0).integers(0, len(vocab.tokens), size=(1, 6))
    want = run_reference(compiled.program, ids[0], vocab)
    np.testing.assert_allclose(compiled.evaluate(ids, vocab)[0], want, atol=1e-9, rtol=0)
