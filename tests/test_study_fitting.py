"""Single-program and mixture fits, and library selection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.output_rule import apply_output_rule
from attnc.study.fitting import best_single_fits, fit_head_mixture, fit_mixtures, top_candidates
from attnc.study.iou import iou_reference_batch
from attnc.compiler.compiled import dense_to_sparse
from attnc.study.scoring import ScoreTable
from attnc.study.selection import library_value, select_library


def programs(rng: np.random.Generator, w: int, n: int) -> dict[str, np.ndarray]:
    i = np.arange(n)
    out = {}
    for name in ("prev", "first", "self", "uniform", "noise"):
        raw = np.zeros((w, n, n))
        if name == "prev":
            raw[:, i, np.maximum(i - 1, 0)] = 1
        elif name == "first":
            raw[..., 0] = 1
        elif name == "self":
            raw[:, i, i] = 1
        elif name == "uniform":
            raw[:] = 1
        else:
            raw = rng.random((w, n, n)) ** 4
        out[name] = apply_output_rule(raw)
    return out


def test_mixture_recovers_a_planted_mixture() -> None:
    rng = np.random.default_rng(0)
    w, n = 24, 20
    progs = programs(rng, w, n)
    attn = 0.6 * progs["prev"] + 0.3 * progs["first"] + 0.1 * progs["uniform"]
    attn = (0.97 * attn + 0.03 * apply_output_rule(rng.random((w, n, n)))).astype(np.float32)
    fit = {k: v[:12] for k, v in progs.items()}
    held = {k: dense_to_sparse(v[12:], None) if k != "uniform" else v[12:] for k, v in progs.items()}
    result = fit_head_mixture("0.1", attn[:12], fit, attn[12:], held, list(progs), k=3)
    assert set(result.programs) == {"prev", "first", "uniform"}
    assert dict(zip(result.programs, result.weights))["prev"] == pytest.approx(0.6, abs=0.08)
    assert sum(result.weights) == pytest.approx(1.0)
    best_single = max(iou_reference_batch(attn[:12], v).mean() for v in fit.values())
    assert result.iou_fit > best_single + 0.2
    mix = sum(w_ * progs[p][12:] for p, w_ in zip(result.programs, result.weights))
    assert result.iou_heldout == pytest.approx(iou_reference_batch(attn[12:], mix).mean(), abs=1e-6)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 3))
def test_mixture_never_worse_than_best_single_on_fit(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    w, n = 6, 10
    progs = programs(rng, w, n)
    logits = rng.normal(size=(w, n, n)) * 3
    logits = np.where(np.tril(np.ones((n, n), bool)), logits, -np.inf)
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn = (attn / attn.sum(-1, keepdims=True)).astype(np.float32)
    result = fit_head_mixture("0.0", attn[:3], {k_: v[:3] for k_, v in progs.items()}, attn[3:],
                              {k_: v[3:] for k_, v in progs.items()}, list(progs), k=k, search_windows=2)
    best_single = max(iou_reference_batch(attn[:3], v[:3]).mean() for v in progs.values())
    # fit_head_mixture holds candidates as float32: its IoUs match float64 ones to 1e-6.
    assert result.iou_fit >= best_single - 1e-6
    assert len(result.programs) <= k
    assert all(x >= 0 for x in result.weights) and sum(result.weights) == pytest.approx(1.0)


def table(fit: np.ndarray, held: np.ndarray) -> ScoreTable:
    p, h = fit.shape
    return ScoreTable([f"p{i}" for i in range(p)], [f"0.{j}" for j in range(h)], fit, held, 10, 20)


def test_best_single_and_candidates_come_from_fit_iou() -> None:
    t = table(np.array([[0.5, 0.1], [0.4, 0.9], [0.6, 0.2]]), np.array([[0.9, 0.1], [0.1, 0.8], [0.3, 0.2]]))
    singles = best_single_fits(t)
    assert singles["0.0"].program == "p2" and singles["0.0"].iou_heldout == 0.3
    assert singles["0.1"].program == "p1"
    assert top_candidates(t, 2) == {"0.0": ["p2", "p0"], "0.1": ["p1", "p2"]}


def test_fit_mixtures_streams_heads() -> None:
    rng = np.random.default_rng(5)
    progs = programs(rng, 8, 8)
    attn = progs["prev"].astype(np.float32)
    heads = (("0.0", attn[:4], attn[4:]), ("0.1", progs["first"][:4], progs["first"][4:]))
    out = fit_mixtures(heads, {k: v[:4] for k, v in progs.items()}, {k: v[4:] for k, v in progs.items()},
                       {"0.0": ["first", "prev"], "0.1": ["first", "self"]}, k=2)
    assert out["0.0"].programs[0] == "prev" and out["0.0"].iou_heldout == pytest.approx(1.0)
    assert out["0.1"].programs == ("first",)


def test_selection_finds_the_planted_library() -> None:
    # 12 heads; programs 0, 3 and 7 each explain a third of them; the rest are weak copies.
    rng = np.random.default_rng(0)
    n_prog, n_heads = 20, 12
    fit = rng.uniform(0.1, 0.3, size=(n_prog, n_heads))
    for g, p in enumerate((0, 3, 7)):
        fit[p, 4 * g : 4 * g + 4] = 0.9
    held = fit - 0.02
    sel = select_library(table(fit, held), tolerance=0.01)
    assert set(sel.programs) == {"p0", "p3", "p7"}
    assert sel.value >= sel.full_value - 0.01


def test_selection_backward_pass_drops_a_redundant_early_pick() -> None:
    # p0 is decent everywhere (greedy's first pick); p1 and p2 together beat it on every head.
    fit = np.array([[0.7, 0.7, 0.7, 0.7], [0.9, 0.9, 0.1, 0.1], [0.1, 0.1, 0.9, 0.9]])
    sel = select_library(table(fit, fit.copy()), tolerance=0.01)
    assert set(sel.programs) == {"p1", "p2"} and sel.size == 2
    assert sel.value == pytest.approx(0.9)


def test_library_value_uses_fit_choice_but_heldout_score() -> None:
    fit = np.array([[0.9], [0.8]])
    held = np.array([[0.1], [0.7]])
    assert library_value(table(fit, held), [0, 1]) == pytest.approx(0.1)
    assert library_value(table(fit, held), [1]) == pytest.approx(0.7)
