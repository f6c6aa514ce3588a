"""Token tables of literal-set membership are built from the sets, and equal the per-token evaluation."""

import numpy as np
import pytest

from attnc.compiler.hoisting import (_TABLE_BUILTINS, _membership_strings, _membership_table, _per_token_table,
                                     _vocab_cache)
from attnc.compiler.ir import TableSpec
from attnc.compiler.value_types import BOOL, FLOAT
from attnc.runtime.models import tiny_model


@pytest.fixture(scope="module")
def vocab():
    return tiny_model("llama", n_layers=1, n_heads=2).vocab


@pytest.mark.parametrize("source, kind", [
    ("0.65 * (t in {'a', 'b', 'the'})", FLOAT),
    ("t not in ('a', 'x')", BOOL),
    ("(t in {'a'}) and not (t in ['b', 'a'])", BOOL),
    ("1.5 if t in {'no such token at all'} else -2.0", FLOAT),
])
def test_membership_tables_equal_per_token_evaluation(vocab, source, kind):
    listed = [tok for tok in vocab.tokens[3:8]]
    source = source.replace("'a'", repr(listed[0])).replace("'b'", repr(listed[1]))
    assert _membership_strings(source) is not None
    function = eval(compile(f"lambda t: ({source})", "<test>", "eval"), {"__builtins__": {}, **_TABLE_BUILTINS})
    dtype = np.float64 if kind == FLOAT else np.bool_
    cache = _vocab_cache(vocab)
    fast = _membership_table(source, function, dtype, vocab, cache)
    slow = _per_token_table(TableSpec(source, kind), function, dtype, vocab, cache)
    np.testing.assert_array_equal(fast.values, slow.values)
    assert not fast.errors.any() and not slow.errors.any()


@pytest.mark.parametrize("source", [
    "t in {'a'} or t.startswith('x')",   # t read otherwise too
    "t in {'a', x}",                      # not a literal set
    "len(t) > 2",
    "t[0] in {'a'}",
])
def test_other_shapes_take_the_general_path(source):
    assert _membership_strings(source) is None
