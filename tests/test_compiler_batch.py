"""Batch API details: dtypes, sparse rows, error reporting, backend choice and fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from attnc.compiler import WindowError, compile_program
from attnc.compiler.compiled import dense_to_sparse
from attnc.compiler.probing import probe_ids, probe_vocab
from attnc.dsl import load_program, parse_program, run_reference
from test_compiler_fixtures import PROGRAMS_DIR

VOCAB = probe_vocab()
IDS = probe_ids()


def _native(body: str, name: str = "prog") -> str:
    return f"def {name}(q: int, k: int, w: Window) -> float:\n    {body}\n"


def test_dense_output_is_float64_row_stochastic_and_causal():
    compiled = compile_program(load_program(PROGRAMS_DIR / "decay_070.py"))
    out = compiled.evaluate(IDS, VOCAB)
    assert out.dtype == np.float64 and out.shape == (IDS.shape[0], IDS.shape[1], IDS.shape[1])
    np.testing.assert_allclose(out.sum(-1), 1.0)
    assert not np.triu(out, 1).any()
    non_causal = compiled.evaluate(IDS, VOCAB, causal=False)
    ref = run_reference(compiled.program, IDS[0], VOCAB, causal=False)
    np.testing.assert_allclose(non_causal[0], ref, atol=1e-12)


@pytest.mark.parametrize("name, k", [("previous_token", 1), ("first_token", 1), ("local_window_3", 3),
                                     ("uniform_causal", None)])
def test_sparse_k_is_probed_and_sparse_equals_dense(name, k):
    compiled = compile_program(load_program(PROGRAMS_DIR / f"{name}.py"))
    assert compiled.sparse_k == k
    dense = compiled.evaluate(IDS, VOCAB)
    sparse = compiled.evaluate_sparse(IDS, VOCAB)
    assert sparse.keys.dtype == np.int32 and sparse.weights.dtype == np.float32
    if k is not None:
        assert sparse.keys.shape == IDS.shape + (k,)
    np.testing.assert_allclose(sparse.to_dense(), dense, atol=1e-6)


def test_sparse_refuses_rows_wider_than_k():
    dense = np.tril(np.ones((1, 5, 5)))
    with pytest.raises(ValueError, match="more than K=2"):
        dense_to_sparse(dense, 2, "wide")
    padded = dense_to_sparse(np.eye(4)[None], 3)
    assert padded.keys.shape == (1, 4, 3) and (padded.weights[..., 1:] == 0).all()


def test_failure_names_program_and_first_failing_window():
    src = _native("return 1.0 if w.n < 30 or w.ids[q + 1] != 7 else 0.0", "late_fail")
    compiled = compile_program(parse_program(src))
    ids = np.stack([IDS[0, :20], IDS[1, :20], IDS[2, :20]])
    ids_long = np.concatenate([IDS[:, :20], IDS[:, :20]], axis=1)[:3]  # n = 40 -> out of range at q = 39
    assert compiled.evaluate(ids, VOCAB).shape == (3, 20, 20)  # `w.n < 30` short-circuits: no index read
    with pytest.raises(WindowError) as info:
        compiled.evaluate(ids_long, VOCAB)
    assert info.value.window == 0 and "late_fail" in str(info.value) and "IndexError" in str(info.value)


def test_nan_output_is_an_error_not_zeros():
    src = _native("return (1.0 / (k - q + 0.5)) * 0.0 + (1e308 * 10.0 if k == 0 else 1.0)", "overflow")
    compiled = compile_program(parse_program(src))
    with pytest.raises(WindowError, match="inf|NaN"):
        compiled.evaluate(IDS[:1], VOCAB)


def test_short_circuit_protects_inactive_pairs():
    src = _native("return 1.0 if k > 0 and w.ids[k - 1] == w.ids[q] and 10 // (q - k) > 1 else 0.0", "guarded")
    compiled = compile_program(parse_program(src))
    assert compiled.backend == "numpy"
    with pytest.raises(WindowError, match="ZeroDivisionError"):
        compiled.evaluate(np.array([[5, 5, 5]]), VOCAB)  # k = q with ids[k-1] == ids[q]: 10 // 0
    got = compiled.evaluate(np.array([[5, 6, 7, 8]]), VOCAB)  # never reaches the division when k == q
    np.testing.assert_allclose(got[0], run_reference(compiled.program, [5, 6, 7, 8], VOCAB))


def test_unsupported_construct_falls_back_with_a_reason():
    src = _native("return 1.0 if w.tok[q] in w.tok[k] else 0.0", "substring")
    compiled = compile_program(parse_program(src))
    assert compiled.backend == "interpreted"
    assert compiled.messages and "interpreted" in compiled.messages[0]
    np.testing.assert_allclose(compiled.evaluate(IDS[:2], VOCAB)[1], run_reference(compiled.program, IDS[1], VOCAB))


def test_backend_choice_rule_and_explicit_backends():
    native = compile_program(load_program(PROGRAMS_DIR / "induction.py"))
    paper = compile_program(load_program(PROGRAMS_DIR / "induction_copy.py"))
    assert (native.backend, paper.backend) == ("numpy", "numba")
    assert compile_program(native.program, backend="torch").backend == "torch"
    assert compile_program(native.program, backend="numba").backend == "numba"
    forced = compile_program(paper.program, backend="numpy")
    assert forced.backend == "interpreted" and "numpy unavailable" in forced.messages[0]
    with pytest.raises(ValueError, match="unknown backend"):
        compile_program(native.program, backend="jax")


def test_hoisted_tables_are_shared_and_structural_kernels_are_shared():
    a = compile_program(load_program(PROGRAMS_DIR / "decay_050.py"))
    b = compile_program(load_program(PROGRAMS_DIR / "decay_090.py"))
    assert a.kernel_source == b.kernel_source and a.constants != b.constants
    words = compile_program(parse_program(_native("return 1.0 if w.tok[k].lower() in {'he', 'she'} else 0.0")))
    assert len(words.tables) == 1 and "t.lower()" in words.tables[0].source
    assert "lower" not in words.kernel_source  # no string method reaches the kernel


def test_torch_backend_tensor_output_on_device():
    torch = pytest.importorskip("torch")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    program = load_program(PROGRAMS_DIR / "same_sentence.py")
    expected = compile_program(program).evaluate(IDS, VOCAB)
    for device in devices:
        compiled = compile_program(program, backend="torch", device=device)
        got = compiled.evaluate_tensor(IDS, VOCAB)
        assert got.device.type == device and got.dtype == torch.float64
        np.testing.assert_allclose(got.cpu().numpy(), expected, atol=1e-12)


def test_evaluate_library_sparse_matches_dense():
    from attnc.compiler import evaluate_library

    programs = [compile_program(load_program(PROGRAMS_DIR / f"{name}.py"))
                for name in ("previous_token", "uniform_causal", "induction")]
    sparse = evaluate_library(programs, IDS, VOCAB, sparse=True)
    dense = evaluate_library(programs, IDS, VOCAB)
    assert not sparse.errors and set(sparse.matrices) == set(dense.matrices) == {p.name for p in programs}
    for name, rows in sparse.matrices.items():
        np.testing.assert_allclose(rows.to_dense(), dense.matrices[name], atol=1e-6, err_msg=name)
    assert sparse.matrices["previous_token"].keys.shape[-1] == 1
