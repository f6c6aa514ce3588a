"""The fused output rule (attnc/compiler/output_kernel.py) equals the NumPy oracle."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attnc.compiler.output_kernel import apply_output_rule_fused
from attnc.output_rule import OutputContractError, apply_output_rule

# Many exact zeros and negatives, so empty rows (-> diagonal) come up often.
values = st.one_of(st.just(0.0), st.just(-1.0), st.floats(-3.0, 1e6, allow_nan=False, allow_infinity=False))


@settings(max_examples=150, deadline=None)
@given(st.tuples(st.integers(1, 3), st.integers(1, 10)).flatmap(
    lambda s: arrays(np.float64, (s[0], s[1], s[1]), elements=values)), st.booleans(), st.booleans())
def test_fused_rule_equals_oracle(raw, causal, in_place):
    expected = apply_output_rule(raw, causal=causal)
    buffer = raw.copy()
    got = apply_output_rule_fused(buffer, causal=causal, out=buffer if in_place else None)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert got.dtype == np.float64


def test_fused_rule_reads_broadcast_views():
    row = np.array([[[0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [0.0, -1.0, 4.0]]])
    view = np.broadcast_to(row, (4, 3, 3))
    np.testing.assert_allclose(apply_output_rule_fused(view), apply_output_rule(view), atol=1e-12)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
@pytest.mark.parametrize("where", [(0, 0, 2), (1, 2, 0)])  # above the diagonal counts too, as in the oracle
def test_non_finite_raises_the_oracles_message(bad, word, where):
    raw = np.ones((2, 3, 3))
    raw[where] = bad
    with pytest.raises(OutputContractError, match=word) as oracle:
        apply_output_rule(raw)
    with pytest.raises(OutputContractError) as fused:
        apply_output_rule_fused(raw)
    assert str(fused.value) == str(oracle.value)


def test_nan_after_inf_reports_nan_like_the_oracle():
    raw = np.ones((2, 3, 3))
    raw[0, 0, 0], raw[1, 2, 2] = np.inf, np.nan
    with pytest.raises(OutputContractError, match="NaN"):
        apply_output_rule_fused(raw)


def test_non_float_input_goes_through_the_oracle():
    raw = np.array([[[1, 0], [0, 0]]], dtype=np.int64)
    np.testing.assert_array_equal(apply_output_rule_fused(raw), apply_output_rule(raw))


# ---- paper-form row normalisation in place (numba_backend._matrix_may_alias) ----------------------

_PAPER = '''import numpy as np


def {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        out[i, max(i - 1, 0)] = 2.0
        out[i, i] = 1.0
{middle}
    return "x", {result}
'''


@pytest.mark.parametrize("middle, result, in_place", [
    ("    out += 1e-3\n    out = out / out.sum(axis=1, keepdims=True)", "out", True),
    # an alias of the matrix must keep the unnormalised values, as in Python
    ("    keep = out\n    out = out / out.sum(axis=1, keepdims=True)\n    out[2, 0] = keep[1, 1]", "out", False),
    ("    row = out[1]\n    out = out / out.sum(axis=1, keepdims=True)\n    out[2, 0] = row[1] + 1.0", "out", False),
    ("    out /= out.sum(axis=1, keepdims=True)", "out", True),
    ("    out += 1\n    out /= out.sum(axis=1, keepdims=True)", "out", True),
    ("    out += -0.5\n    out = out / out.sum(axis=1, keepdims=True)", "out", True),
    # `+=` of something other than a number is not fused into the normalisation
    ("    out += out[0, 0]\n    out = out / out.sum(axis=1, keepdims=True)", "out", True),
])
def test_paper_normalisation_in_place_only_without_aliases(middle, result, in_place):
    from attnc.compiler import compile_program
    from attnc.compiler.probing import probe_ids, probe_vocab
    from attnc.dsl import parse_program, run_reference

    compiled = compile_program(parse_program(_PAPER.format(name="norm", middle=middle, result=result)))
    assert compiled.backend == "numba"
    # a final `out += c; out = out / ...` is left to the kernel (`m`), fused with the output rule
    assert bool(re.search(r"= _(add_)?row_normalize_inplace\((out|m)\b", compiled.kernel_source)) == in_place
    ids, vocab = probe_ids(), probe_vocab()
    got = compiled.evaluate(ids, vocab)
    for b in range(ids.shape[0]):
        np.testing.assert_allclose(got[b], run_reference(compiled.program, ids[b], vocab), atol=1e-12)


def test_loop_kernel_with_fused_rule_names_nan_and_handles_non_causal():
    from attnc.compiler import WindowError, compile_program
    from attnc.compiler.probing import probe_ids, probe_vocab
    from attnc.dsl import parse_program, run_reference

    ids, vocab = probe_ids(), probe_vocab()
    # rows 0 and 1 sum to 0 before the program's own normalisation: 0 / 0 is NaN
    nan_src = _PAPER.format(name="zero_rows", middle="    out[0, 0] = 0.0\n    out[1, 0] = -2.0\n"
                            "    out = out / out.sum(axis=1, keepdims=True)", result="out")
    compiled = compile_program(parse_program(nan_src))
    assert compiled.backend == "numba"
    with pytest.raises(WindowError, match="NaN") as info:
        compiled.evaluate(ids, vocab)
    assert info.value.window == 0
    upper = _PAPER.format(name="upper", middle="    out[0, 2] = 5.0", result="out")
    compiled = compile_program(parse_program(upper))
    for causal in (False, True):
        got = compiled.evaluate(ids, vocab, causal=causal)
        for b in range(ids.shape[0]):
            np.testing.assert_allclose(got[b], run_reference(compiled.program, ids[b], vocab, causal=causal),
                                       atol=1e-12)


def test_reads_lists_the_features_a_kernel_needs():
    """A program that reads no features is evaluated without computing them: results must not change."""
    from attnc.compiler import compile_program
    from attnc.compiler.probing import probe_ids, probe_vocab
    from attnc.dsl import load_program
    from attnc.window import window_features
    from test_compiler_fixtures import PROGRAMS_DIR

    ids, vocab = probe_ids(), probe_vocab()
    features = window_features(ids, vocab)
    assert compile_program(load_program(PROGRAMS_DIR / "same_sentence.py")).reads == ("sent_id",)
    assert compile_program(load_program(PROGRAMS_DIR / "decay_070.py")).reads == ()
    for path in sorted(PROGRAMS_DIR.glob("*.py")):
        compiled = compile_program(load_program(path))
        if compiled.backend == "interpreted":
            continue
        assert compiled.reads is not None
        np.testing.assert_array_equal(compiled.evaluate(ids, vocab), compiled.evaluate(ids, vocab, features=features))


# ---- paper-form `m += c; m = m / m.sum(...)` fused with the rule (output_kernel._add_normalize_rule_matrix) ----

@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), c=st.sampled_from([0.0, 1e-4, 1.0, -0.5]), causal=st.booleans(),
       seed=st.integers(0, 2**16), tiny=st.booleans())
def test_add_normalize_rule_equals_the_steps_one_after_the_other(n, c, causal, seed, tiny):
    from attnc.compiler.output_kernel import _add_normalize_rule_matrix

    rng = np.random.default_rng(seed)
    m = rng.choice([0.0, 0.0, 1.0, 2.5, -1.0, 1e-310, 1.5e308], size=(n, n)) * (1e-300 if tiny else 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        normalized = (m + c) / (m + c).sum(axis=1, keepdims=True)
    finite = bool(np.isfinite(normalized).all())
    out = np.full((n, n), 7.0)
    status = _add_normalize_rule_matrix(m.copy(), c, causal, out)
    assert status == (0 if finite else 1)
    if finite:
        np.testing.assert_allclose(out, apply_output_rule(normalized[None], causal=causal)[0], rtol=1e-12, atol=1e-300)
    in_place = m.copy()  # out may be m itself
    assert _add_normalize_rule_matrix(in_place, c, causal, in_place) == status
    if finite:
        np.testing.assert_allclose(in_place, out, rtol=1e-12, atol=1e-300)


# ---- element-write tracking: the matrix lives in a zero scratch, the rule reads each row's written span ----

@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 9), c=st.sampled_from([0.0, 1e-4, 1.0, -0.5]), causal=st.booleans(),
       seed=st.integers(0, 2**16), tiny=st.booleans())
def test_tracked_rule_equals_the_untracked_one(n, c, causal, seed, tiny):
    from attnc.compiler.output_kernel import _add_normalize_rule_matrix, _add_normalize_rule_tracked

    rng = np.random.default_rng(seed)
    m = np.zeros((n, n))
    lo, hi = np.full(n, n, np.int64), np.zeros(n, np.int64)
    for i in range(n):
        if rng.random() < 0.25:
            continue  # a row never written
        a, b = sorted(rng.integers(0, n, size=2))
        lo[i], hi[i] = a, b + 1  # the span may hold written zeros
        m[i, a:b + 1] = rng.choice([0.0, 1.0, 2.5, -1.0, 1e-310, 1.5e308], size=b + 1 - a) * (1e-300 if tiny else 1.0)
    expected = np.full((n, n), 7.0)
    status = _add_normalize_rule_matrix(m.copy(), c, causal, expected)
    # a scratch matrix into a stale out; the matrix built in out itself (out was zeros)
    for in_place in (False, True):
        scratch, lo_w, hi_w = m.copy(), lo.copy(), hi.copy()
        out = scratch if in_place else np.full((n, n), 7.0)
        assert _add_normalize_rule_tracked(scratch, lo_w, hi_w, c, causal, out, in_place) == status
        if status == 0:
            np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-300)
            assert (lo_w == n).all() and (hi_w == 0).all()  # ready for the next window
            assert in_place or not scratch.any()


_TRACKED = '''import numpy as np


def {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    ids = toks.input_ids[0]
    out = np.zeros((n, n))
    last = 0
{body}
    out += 1e-3
    out = out / out.sum(axis=1, keepdims=True)
    return "x", out
'''


@pytest.mark.parametrize("body, tracked", [
    ("    for i in range(n):\n        out[i, last] = 1.0\n        if ids[i] % 3 == 0:\n            last = i", True),
    # negative indices, `m[i][j]`, `+=` and reads of the matrix are element uses
    ("    for i in range(n):\n        out[i, -1] = 0.5\n        out[i][i - 1] += 2.0\n"
     "        out[-1, i] = out[i, i - 1] + out[0][0]", True),
    ("    out[0, 0] = 3.0\n    out[n - 1, 0] = 1.0", True),
    # a write inside nested loops: rows get dense, the plain fused rule is used
    ("    for i in range(n):\n        for j in range(i):\n            out[i, j] = 1.0", False),
    # a row view could write the matrix unseen
    ("    for i in range(n):\n        row = out[i]\n        row[0] = 1.0", False),
    ("    for i in range(n):\n        out[i, 0] = 1.0\n    out[1] = 0.25", False),
], ids=["pointer", "element-forms", "no-loop", "nested-loops", "row-view", "row-write"])
def test_element_write_tracking_only_where_every_write_is_one_element(body, tracked):
    from attnc.compiler import compile_program
    from attnc.compiler.probing import probe_ids, probe_vocab
    from attnc.dsl import parse_program, run_reference

    compiled = compile_program(parse_program(_TRACKED.format(name="tracked", body=body)))
    assert compiled.backend == "numba"
    assert (", scratch, True, lo, hi)" in compiled.kernel_source) == tracked
    ids, vocab = probe_ids(), probe_vocab()
    for causal in (True, False):
        got = compiled.evaluate(ids, vocab, causal=causal)  # one scratch for every window of the batch
        for b in range(ids.shape[0]):
            np.testing.assert_allclose(got[b], run_reference(compiled.program, ids[b], vocab, causal=causal),
                                       atol=1e-12)
    raw = compiled.raw(ids, vocab)
    np.testing.assert_allclose(apply_output_rule(raw), compiled.evaluate(ids, vocab), atol=1e-12)


def test_tracked_program_that_fails_names_the_window():
    from attnc.compiler import WindowError, compile_program
    from attnc.compiler.probing import probe_ids, probe_vocab
    from attnc.dsl import parse_program

    body = "    for i in range(n):\n        out[i, last] = 1.0\n        last = i + 2"  # row n - 2 writes column n
    compiled = compile_program(parse_program(_TRACKED.format(name="overrun", body=body)))
    assert ", scratch, True, lo, hi)" in compiled.kernel_source
    with pytest.raises(WindowError, match="index") as info:
        compiled.evaluate(probe_ids(), probe_vocab())
    assert info.value.window == 0
