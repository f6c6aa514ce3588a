"""`out=` buffers: CompiledProgram.evaluate, evaluate_library and Library.matrices write into them."""

from __future__ import annotations

import numpy as np
import pytest

from attnc.compiler import compile_program
from attnc.compiler.compiled import evaluate_library
from attnc.compiler.probing import probe_ids, probe_vocab
from attnc.dsl import load_program, parse_program, run_reference
from test_compiler_fixtures import PROGRAMS_DIR

VOCAB = probe_vocab()
IDS = probe_ids()

# paper form (loop kernel writing into out), native forms (loop and array kernels),
# window-independent (cached matrix copied), interpreted
CASES = ["recent_punctuation", "line_start", "pronoun_antecedent", "induction", "decay_070", "previous_token",
         "first_token"]


def _compiled(name: str, backend: str | None = None):
    return compile_program(load_program(PROGRAMS_DIR / f"{name}.py"), **({"backend": backend} if backend else {}))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("causal", (True, False))
def test_out_buffer_with_stale_values_gives_the_same_matrices(name, causal):
    compiled = _compiled(name)
    want = compiled.evaluate(IDS, VOCAB, causal=causal)
    shape = want.shape
    buffer = np.random.default_rng(0).normal(size=shape) * 1e3  # stale garbage from an earlier batch
    got = compiled.evaluate(IDS, VOCAB, causal=causal, out=buffer)
    assert got is buffer
    np.testing.assert_array_equal(got, want)
    # reused for another batch of the same shape
    other = IDS[::-1].copy()
    np.testing.assert_array_equal(compiled.evaluate(other, VOCAB, causal=causal, out=buffer),
                                  compiled.evaluate(other, VOCAB, causal=causal))
    ref = run_reference(compiled.program, other[0], VOCAB, causal=causal)
    np.testing.assert_allclose(buffer[0], ref, atol=1e-6)


def test_native_loop_kernel_writes_into_out():
    compiled = _compiled("induction", backend="numba")
    assert compiled.backend == "numba" and compiled.form == "native"
    buffer = np.full(IDS.shape + (IDS.shape[1],), 5.0)
    np.testing.assert_allclose(compiled.evaluate(IDS, VOCAB, out=buffer), _compiled("induction").evaluate(IDS, VOCAB),
                               atol=1e-12)


def test_interpreted_backend_writes_into_out():
    compiled = _compiled("decay_070", backend="interpreted")
    assert compiled.backend == "interpreted"
    buffer = np.full(IDS.shape + (IDS.shape[1],), 9.0)
    got = compiled.evaluate(IDS[:2], VOCAB, out=buffer[:2])
    np.testing.assert_allclose(got, _compiled("decay_070").evaluate(IDS[:2], VOCAB), atol=1e-12)
    assert (buffer[2:] == 9.0).all()


@pytest.mark.parametrize("bad", [
    lambda s: np.zeros(s, dtype=np.float32),
    lambda s: np.zeros((s[0], s[1], s[2] + 1)),
    lambda s: np.zeros((s[0], s[2], s[1]), order="F").transpose(0, 2, 1) if s[1] != s[2] else np.zeros(s, order="F"),
    lambda s: np.broadcast_to(np.zeros(s[1:]), s),
])
def test_bad_out_buffer_is_refused(bad):
    compiled = _compiled("recent_punctuation")
    with pytest.raises(ValueError, match="out= must be a writable C-contiguous float64"):
        compiled.evaluate(IDS, VOCAB, out=bad(IDS.shape + (IDS.shape[1],)))


def test_evaluate_library_uses_the_named_buffers_only():
    programs = [_compiled("recent_punctuation"), _compiled("decay_070")]
    buffer = np.empty(IDS.shape + (IDS.shape[1],))
    result = evaluate_library(programs, IDS, VOCAB, out={"recent_punctuation": buffer})
    assert not result.errors
    assert result.matrices["recent_punctuation"] is buffer
    assert result.matrices["decay_070"] is not buffer
    np.testing.assert_array_equal(buffer, programs[0].evaluate(IDS, VOCAB))


def test_library_matrices_out(tmp_path):
    from attnc.compiler.library_build import build_library
    from attnc.runtime.library import load_library

    build_library([PROGRAMS_DIR / "recent_punctuation.py", PROGRAMS_DIR / "first_token.py"], tmp_path / "lib")
    library = load_library(tmp_path / "lib", vocab=VOCAB)
    buffers = {name: np.full(IDS.shape + (IDS.shape[1],), -1.0) for name in library.names}
    got = library.matrices(library.names, IDS, out=buffers)
    for name in library.names:
        assert got[name] is buffers[name]
        np.testing.assert_array_equal(got[name], library.programs[name].evaluate(IDS, VOCAB))


def test_failing_program_with_out_still_names_the_window():
    from attnc.compiler import WindowError

    src = "def late_fail(q: int, k: int, w: Window) -> float:\n    return 1.0 if w.ids[q + 1] != 7 else 0.0\n"
    compiled = compile_program(parse_program(src))
    with pytest.raises(WindowError, match="window 0"):
        compiled.evaluate(IDS, VOCAB, out=np.empty(IDS.shape + (IDS.shape[1],)))
