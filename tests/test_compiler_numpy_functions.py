"""np.exp / np.log in compiled programs: equal to the interpreter, and refused where NumPy floats differ.

A NumPy float divides by zero to inf (with a warning) where a Python float
raises ZeroDivisionError, so a program that divides by (or takes int() of) an
np.exp/np.log value stays interpreted; elsewhere both functions compile
(array form: numpy/torch; loop form: numba).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.compiler import compile_program
from attnc.compiler.probing import probe_vocab
from attnc.dsl import ProgramRuntimeError, parse_program, run_reference

NATIVE = {
    "exp_decay": "return np.exp(-0.5 * (q - k)) if k <= q else 0.0",
    "log_ramp": "return np.log(2 + q - k) if k <= q else 0.0",
    "log_bad": "return np.log(q - k) if k <= q else 0.0",  # log(0) = -inf on the diagonal: an error in both
    "exp_features": "return float(np.exp(1.0 * w.is_punct[k])) + np.log(1 + abs(q - k)) + np.exp(w.sent_id[q])",
}

PAPER = '''import numpy as np


def {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            out[i, j] = {value}
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "x", out
'''


def _native(name: str, body: str):
    return parse_program(f"import numpy as np\n\n\ndef {name}(q: int, k: int, w: Window) -> float:\n    {body}\n")


def _equal_or_both_fail(compiled, ids: np.ndarray, vocab) -> None:
    try:
        want = np.stack([run_reference(compiled.program, row, vocab) for row in ids])
    except ProgramRuntimeError:
        with pytest.raises(ProgramRuntimeError):
            compiled.evaluate(ids, vocab)
        return
    np.testing.assert_allclose(compiled.evaluate(ids, vocab), want, atol=1e-6, rtol=0)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 20), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", sorted(NATIVE))
def test_native_exp_log_compile_and_equal_the_interpreter(name, backend, n, seed):
    compiled = compile_program(_native(name, NATIVE[name]), backend=backend, probe=False)
    assert compiled.backend == backend, compiled.messages
    vocab = probe_vocab()
    ids = np.random.default_rng(seed).integers(0, vocab.size, size=(2, n))
    _equal_or_both_fail(compiled, ids, vocab)


@pytest.mark.parametrize("value", ["np.exp(-0.3 * (i - j))", "np.log(1 + i - j) + 1.0", "np.exp(np.log(1.0 + j))",
                                   "np.exp(j - i)"])
def test_paper_exp_log_compile_to_numba_and_equal_the_interpreter(value):
    compiled = compile_program(parse_program(PAPER.format(name="p", value=value)))
    assert compiled.backend == "numba", compiled.messages
    vocab = probe_vocab()
    ids = np.random.default_rng(0).integers(0, vocab.size, size=(3, 17))
    _equal_or_both_fail(compiled, ids, vocab)


@pytest.mark.parametrize("body, why", [
    ("return 1.0 / np.exp(q - k)", "NumPy float"),          # 1 / NumPy float: inf, not ZeroDivisionError
    ("return 1.0 / (1.0 + np.log(1 + q - k))", "NumPy float"),
    ("return float(int(np.log(1 + q - k)))", "NumPy float"),  # int(NumPy nan/inf) raises in Python only
    ("return np.exp(q - k) ** 2 if k <= q else 0.0", "NumPy float"),
    ("return np.exp(w.is_punct[k])", "int or float"),         # np.exp(True) is a float16 in NumPy
    ("return np.exp(k == q or q - k)", "int or float"),
])
def test_risky_numpy_floats_stay_interpreted(body, why):
    compiled = compile_program(_native("risky", body))
    assert compiled.backend == "interpreted"
    assert why in " ".join(compiled.messages)


@pytest.mark.parametrize("value, why", [("1.0 / (1.0 + np.exp(j - i))", "NumPy float"),
                                        ("np.exp(i == j)", "bool")])
def test_paper_programs_keep_risky_np_exp_interpreted(value, why):
    compiled = compile_program(parse_program(PAPER.format(name="p", value=value)))
    assert compiled.backend == "interpreted"
    assert why in " ".join(compiled.messages)
