"""The fast IoU path equals the metric's definition (ARCHITECTURE.md, "Fidelity metric")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.output_rule import apply_output_rule
from attnc.study.iou import EPS, iou_reference, iou_reference_batch
from attnc.compiler.compiled import dense_to_sparse
from attnc.study.scoring import ScoreAccumulator, ScoreTable, SparseRows, accumulate_scores, score_window_batch


def causal_softmax(rng: np.random.Generator, shape: tuple[int, ...], scale: float, causal: bool = True) -> np.ndarray:
    n = shape[-1]
    logits = rng.normal(size=shape) * scale
    if causal:
        logits = np.where(np.tril(np.ones((n, n), bool)), logits, -np.inf)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    return (a / a.sum(-1, keepdims=True)).astype(np.float32)


def random_program(rng: np.random.Generator, w: int, n: int, kind: str, causal: bool = True) -> np.ndarray:
    """Row-stochastic causal matrices: dense, sparse, or with entries below EPS."""
    if kind == "dense":
        raw = rng.random((w, n, n)) ** 3
    elif kind == "sparse":
        raw = (rng.random((w, n, n)) < 2.0 / n) * rng.random((w, n, n))
    else:  # tiny: exact zeros, entries below EPS and a few normal ones
        raw = rng.choice([0.0, 1e-14, 5e-13, 1e-12, 0.3, 1.0], size=(w, n, n), p=[0.4, 0.15, 0.15, 0.1, 0.1, 0.1])
    return apply_output_rule(raw, causal=causal)


def test_reference_matches_hand_computed_value() -> None:
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    p = np.array([[1.0, 0.0], [1.0, 0.0]])
    row0 = (1.0 + EPS) / (1.0 + EPS)
    row1 = (0.5 + EPS) / (1.0 + 0.5)
    assert iou_reference(a, p) == pytest.approx((row0 + row1) / 2, abs=1e-15)
    assert iou_reference(a, a) == pytest.approx(1.0)


def test_reference_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="n, n"):
        iou_reference_batch(np.zeros((2, 3, 3)), np.zeros((2, 4, 4)))


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 64),
    causal=st.booleans(),
    heads=st.integers(1, 4),
    kind=st.sampled_from(["dense", "sparse", "tiny"]),
    scale=st.sampled_from([0.1, 2.0, 30.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_fast_path_equals_reference(n: int, causal: bool, heads: int, kind: str, scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = 2
    attn = causal_softmax(rng, (w, heads, n, n), scale, causal)
    if kind == "tiny":  # attention with exact zeros and sub-EPS entries too
        attn[..., 0] = np.where(rng.random(attn[..., 0].shape) < 0.5, 0.0, attn[..., 0])
    prog = random_program(rng, w, n, kind, causal)
    fast = score_window_batch(attn, {"dense": prog, "sparse": dense_to_sparse(prog, None)})
    ref = np.array([[iou_reference_batch(attn[:, h], prog).sum() for h in range(heads)]])
    np.testing.assert_allclose(fast[0:1], ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast[1:2], ref, rtol=0, atol=1e-6)


def test_sparse_padding_and_float32_weights() -> None:
    rng = np.random.default_rng(1)
    n = 12
    attn = causal_softmax(rng, (3, 2, n, n), 3.0)
    prog = random_program(rng, 3, n, "sparse")
    sp = dense_to_sparse(prog, None)
    # Extra padding columns whose key repeats a real key must not count.
    keys = np.concatenate([sp.keys, sp.keys[..., :1]], axis=-1)
    weights = np.concatenate([sp.weights, np.zeros_like(sp.weights[..., :1])], axis=-1).astype(np.float32)
    padded = SparseRows(keys, weights)
    np.testing.assert_allclose(padded.to_dense(), prog, atol=1e-7)
    fast = score_window_batch(attn, {"p": padded})
    ref = [iou_reference_batch(attn[:, h], prog).sum() for h in range(2)]
    np.testing.assert_allclose(fast[0], ref, atol=1e-6)


def test_perfect_program_scores_one_and_wrong_program_scores_low() -> None:
    rng = np.random.default_rng(2)
    n = 16
    attn = causal_softmax(rng, (2, 1, n, n), 40.0)  # nearly one-hot rows
    argmax = attn[:, 0].argmax(-1)
    exact = np.zeros((2, n, n))
    np.put_along_axis(exact, argmax[..., None], 1.0, axis=-1)
    first = np.zeros((2, n, n))
    first[..., 0] = 1.0
    out = score_window_batch(attn, {"exact": exact, "first": first}) / 2
    assert out[0, 0] > 0.9
    assert out[1, 0] < out[0, 0] - 0.3


def test_batches_merge_by_addition(tmp_path) -> None:
    rng = np.random.default_rng(3)
    n, heads = 10, 3
    attn = causal_softmax(rng, (5, heads, n, n), 2.0)
    progs = {"a": random_program(rng, 5, n, "dense"), "b": random_program(rng, 5, n, "sparse")}
    names = ["0.0", "0.1", "1.0"]
    whole = ScoreAccumulator(list(progs), names).add(score_window_batch(attn, progs), 5)
    left = ScoreAccumulator(list(progs), names).add(score_window_batch(attn[:2], {k: v[:2] for k, v in progs.items()}), 2)
    right = ScoreAccumulator(list(progs), names).add(score_window_batch(attn[2:], {k: v[2:] for k, v in progs.items()}), 3)
    np.testing.assert_allclose(left.merge(right).mean(), whole.mean(), atol=1e-12)
    assert left.merge(right).n_windows == 5
    streamed = accumulate_scores(((attn[s], {k: v[s] for k, v in progs.items()}) for s in (slice(0, 4), slice(4, 5))),
                                 list(progs), names)
    np.testing.assert_allclose(streamed.mean(), whole.mean(), atol=1e-12)

    table = ScoreTable.from_accumulators(whole, left)
    table.save(tmp_path / "t.npz")
    back = ScoreTable.load(tmp_path / "t.npz")
    assert back.programs == ["a", "b"] and back.heads == names
    np.testing.assert_array_equal(back.iou_fit, table.iou_fit)
    assert (back.n_windows_fit, back.n_windows_heldout) == (5, 2)
    table.to_csv(tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "program,head,iou_fit,iou_heldout" and len(lines) == 1 + 2 * 3


def test_shape_errors_name_the_program() -> None:
    attn = np.zeros((2, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="'bad'"):
        score_window_batch(attn, {"bad": np.zeros((2, 5, 5))})
    with pytest.raises(ValueError, match="'sp'"):
        score_window_batch(attn, {"sp": SparseRows(np.zeros((2, 4, 3), np.int32), np.zeros((2, 4, 2)))})
