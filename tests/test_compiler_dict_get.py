"""`{...}.get(x, default)` on a constant dict compiles (select chain or token table) and equals the interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.compiler import compile_program
from attnc.compiler.probing import probe_vocab
from attnc.dsl import parse_program, run_reference

NATIVE = {
    "by_distance": "return {0: 2.0, 1: 1.0, 3: 0.25}.get(q - k, 0.1) if k <= q else 0.0",
    "bool_keys": "return {True: 3, 2: 1}.get(int(k == q) + (k == 0), 0) * 1.0",
    "duplicate_keys": "return {1: 1.0, 1.0: 5.0, 0: 2.0}.get(q - k, 0.5) if k <= q else 0.0",
    # a relative-position profile: signed literals (USub in Python's AST) as values, keys and default
    "signed_profile": "return np.exp({0: 1.5, 1: -0.75, 2: -2.0, -1: 9.0, 3: +0.5}.get(q - k, -3.25))",
    "signed_int_keys": "return {-2: 1.0, -1: 2.0, 0: -0.0}.get(k - q, -1.5) * (k <= q)",
    "nested_signs": "return {0: -(-0.5), 1: +(-2.0), -(-3): 4.0}.get(q - k, - - -1.0) * (k <= q)",
}

PAPER = '''import numpy as np


def {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    weights = {{".": 3.0, ",": 2.0, "Ġthe": 0.0}}
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            out[i, j] = weights.get(tokens[j], 0.5) + {{0: 1.0, 1: 0.5}}.get(i - j, 0.0)
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "x", out
'''


def _native(name: str, body: str):
    return parse_program(f"def {name}(q: int, k: int, w: Window) -> float:\n    {body}\n")


def _ids(n: int, seed: int):
    vocab = probe_vocab()
    pool = np.array([i for i, t in enumerate(vocab.tokens) if t in (".", ",", "Ġthe")] + [5, 6, 7])
    return np.random.default_rng(seed).choice(pool, size=(2, n)), vocab


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 16), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", sorted(NATIVE))
def test_native_dict_get_equals_the_interpreter(name, backend, n, seed):
    compiled = compile_program(_native(name, NATIVE[name]), backend=backend, probe=False)
    assert compiled.backend == backend, compiled.messages
    ids, vocab = _ids(n, seed)
    want = np.stack([run_reference(compiled.program, row, vocab) for row in ids])
    np.testing.assert_allclose(compiled.evaluate(ids, vocab), want, atol=1e-9, rtol=0)


@pytest.mark.parametrize("n", [1, 7, 30])
def test_paper_dict_get_compiles_to_numba_and_equals_the_interpreter(n):
    compiled = compile_program(parse_program(PAPER.format(name="weights_by_token")))
    assert compiled.backend == "numba", compiled.messages
    ids, vocab = _ids(n, 0)
    want = np.stack([run_reference(compiled.program, row, vocab) for row in ids])
    np.testing.assert_allclose(compiled.evaluate(ids, vocab), want, atol=1e-9, rtol=0)


@pytest.mark.parametrize("body", [
    "return {0: 1, 1: 2.0}.get(q - k, 0.0)",       # int or float depending on the key
    "return {0: 1.0}.get(q - k)",                   # None when missing
    "return {0: float('inf')}.get(q - k, 0.0)",
    "return {0: -q}.get(q - k, 0.0) * 1.0",        # a value that is no literal
    "return {0: -True}.get(q - k, 0)",              # a negated bool is no number literal
])
def test_dict_get_of_unclear_type_stays_interpreted(body):
    try:
        program = _native("unclear", body)
    except Exception as exc:  # rejected by the DSL itself (e.g. float('inf')): nothing to compile
        pytest.skip(f"not a valid program: {exc}")
    assert compile_program(program).backend == "interpreted"
