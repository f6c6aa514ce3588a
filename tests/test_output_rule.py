"""The output rule: identical in NumPy and torch, row-stochastic and causal."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attnc.output_rule import OutputContractError, apply_output_rule, apply_output_rule_torch

finite = st.floats(-2.0, 5.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: arrays(np.float64, (2, n, n), elements=finite)), st.booleans())
def test_rule_is_row_stochastic_causal_and_backend_independent(raw, causal):
    out = apply_output_rule(raw, causal=causal)
    n = raw.shape[-1]
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-12)
    if causal:
        assert np.all(np.triu(out, 1) == 0)
    np.testing.assert_allclose(apply_output_rule_torch(torch.from_numpy(raw), causal=causal).numpy(), out, atol=1e-12)
    # a row with no positive causal weight puts everything on the diagonal
    kept = np.tril(np.clip(raw, 0, None)) if causal else np.clip(raw, 0, None)
    for b in range(raw.shape[0]):
        for i in range(n):
            if kept[b, i].sum() == 0:
                assert out[b, i, i] == 1.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_is_an_error(bad):
    raw = np.ones((3, 3))
    raw[1, 0] = bad
    with pytest.raises(OutputContractError):
        apply_output_rule(raw)
    with pytest.raises(OutputContractError):
        apply_output_rule_torch(torch.from_numpy(raw))


def test_wrong_shape_is_an_error():
    with pytest.raises(OutputContractError, match="shape"):
        apply_output_rule(np.ones((3, 4)))
