"""Library.sparse_matrices (SparseProgramSource) and window-independent programs' cached matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnc.compiler import compile_program
from attnc.compiler.compiled import dense_to_sparse
from attnc.compiler.library_build import build_library
from attnc.compiler.probing import probe_ids, probe_vocab
from attnc.dsl import parse_program, run_reference
from attnc.runtime.library import load_library

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
NARROW = ("previous_token", "first_token", "sink_previous")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    out = tmp_path_factory.mktemp("lib")
    names = [*NARROW, "decay_070", "recent_punctuation", "induction"]
    build_library([PROGRAMS / f"{name}.py" for name in names], out / "lib")
    return load_library(out / "lib", vocab=probe_vocab())


def _ids(n: int, batch: int = 3, seed: int = 0) -> np.ndarray:
    vocab = probe_vocab()
    return np.random.default_rng(seed).integers(0, vocab.size, size=(batch, n))


@pytest.mark.parametrize("n", [1, 9, 64])
def test_sparse_rows_equal_dense_matrices(library, n):
    ids = _ids(n)
    names = library.names
    sparse = library.sparse_matrices(names, ids)
    dense = library.matrices(names, ids)
    assert set(sparse) == set(names)
    for name in NARROW:
        if 8 * {"sink_previous": 2}.get(name, 1) > n:
            continue  # too wide for this n: left to `matrices`
        rows = sparse[name]
        assert rows is not None, name
        assert rows.keys.shape[:2] == (3, n) and rows.keys.shape == rows.weights.shape
        np.testing.assert_allclose(rows.to_dense(), dense[name], atol=1e-7)
    # window-dependent programs and wide rows are given densely only
    assert sparse["recent_punctuation"] is None and sparse["induction"] is None and sparse["decay_070"] is None


def test_window_independent_is_static_and_exact():
    reads_tokens = compile_program(parse_program(
        "def f(q: int, k: int, w: Window) -> float:\n    return 1.0 if w.ids[k] == w.ids[q] else 0.0\n"))
    positions = compile_program(parse_program(
        "def g(q: int, k: int, w: Window) -> float:\n    return 0.5 ** (q - k) if k <= q and k > q - 3 else 0.0\n"))
    assert not reads_tokens.window_independent
    assert positions.window_independent
    ids, vocab = probe_ids(), probe_vocab()
    got = positions.evaluate(ids, vocab)
    for b in range(ids.shape[0]):
        np.testing.assert_allclose(got[b], run_reference(positions.program, ids[b], vocab), atol=1e-12)
    # the result is the caller's own array: writing to it does not change the next call
    got[:] = -1.0
    again = positions.evaluate(ids, vocab)
    assert again.flags.writeable and (again >= 0).all()
    np.testing.assert_allclose(again[0], run_reference(positions.program, ids[0], vocab), atol=1e-12)
    # non-causal is cached apart from causal
    loose = positions.evaluate(ids, vocab, causal=False)
    np.testing.assert_allclose(loose[0], run_reference(positions.program, ids[0], vocab, causal=False), atol=1e-12)


@pytest.mark.parametrize("k", [None, "support", 2, 5])
def test_cached_sparse_rows_match_dense_to_sparse(k):
    program = compile_program(parse_program(
        "def g(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == q - 1 or k == 0 else 0.0\n"))
    assert program.window_independent
    ids, vocab = _ids(12, batch=2), probe_vocab()
    dense = program.evaluate(ids, vocab)
    want = dense_to_sparse(dense, None if k == "support" else (k if k is not None else program.sparse_k))
    got = program.evaluate_sparse(ids, vocab, k=k)
    np.testing.assert_array_equal(got.keys, want.keys)
    np.testing.assert_array_equal(got.weights, want.weights)
    with pytest.raises(ValueError, match="more than K=1"):
        program.evaluate_sparse(ids, vocab, k=1)


def test_window_independent_failure_names_the_first_window():
    from attnc.compiler import WindowError

    program = compile_program(parse_program(
        "def h(q: int, k: int, w: Window) -> float:\n    return 1.0 / (q - 3)\n"), probe=False)
    assert program.window_independent
    with pytest.raises(WindowError, match="window 0"):
        program.evaluate(_ids(6), probe_vocab())


def test_programs_differing_only_in_constant_types_do_not_share_cached_results():
    as_int = compile_program(parse_program(
        "def a(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == q - 1 else 0.0\n"), probe=False)
    as_float = compile_program(parse_program(
        "def b(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == q - 1.5 else 0.0\n"), probe=False)
    ids, vocab = _ids(6), probe_vocab()
    first, second = as_int.evaluate(ids, vocab), as_float.evaluate(ids, vocab)
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(second[0], run_reference(as_float.program, ids[0], vocab), atol=1e-12)
