"""The starter program library (`programs/`): every file validates, runs, and
the key programs produce exactly the attention pattern their docstring claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.window import Vocab

try:
    from attnc.dsl import load_program, run_reference
except ImportError as exc:  # the DSL is built by another area; skip until it exists
    load_program = run_reference = None
    DSL_MISSING = f"attnc.dsl does not provide load_program/run_reference yet ({exc})"
else:
    DSL_MISSING = ""

PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "programs"
PROGRAM_FILES = sorted(PROGRAMS_DIR.glob("*.py"))

#: A hand-built window in byte-level spelling ("Ġ" = leading space).
#:   0 Once  1 a  2 cat  3 sat  4 .  5 The  6 cat  7 sat  8 (  9 on  10 the
#:   11 mat  12 )  13 !  14 A  15 cat  16 nap  17 ped
WINDOW_TOKENS = (
    "Once", "Ġa", "Ġcat", "Ġsat", ".", "ĠThe", "Ġcat", "Ġsat", "Ġ(", "Ġon", "Ġthe",
    "Ġmat", ")", "!", "ĠA", "Ġcat", "Ġnap", "ped",
)
VOCAB = Vocab(tokens=tuple(dict.fromkeys(WINDOW_TOKENS)) + ("Ġdog", ",", "Ċ", "Ġ\"", "Ġ3"))
WINDOW_IDS = [VOCAB.tokens.index(t) for t in WINDOW_TOKENS]
N = len(WINDOW_IDS)

needs_dsl = pytest.mark.skipif(bool(DSL_MISSING), reason=DSL_MISSING or "dsl present")


def run_named(name: str, ids: list[int] = WINDOW_IDS) -> np.ndarray:
    return run_reference(load_program(PROGRAMS_DIR / f"{name}.py"), ids, VOCAB)


def rows_on(targets: dict[int, list[int]]) -> np.ndarray:
    """Expected matrix: row q spread uniformly over targets[q]; rows not listed attend to themselves."""
    out = np.eye(N)
    for q, keys in targets.items():
        out[q] = 0.0
        out[q, keys] = 1.0 / len(keys)
    return out


# ---- the library as a whole --------------------------------------------------


def test_library_has_enough_programs_of_both_forms():
    assert len(PROGRAM_FILES) >= 30
    texts = {p.stem: p.read_text(encoding="utf-8") for p in PROGRAM_FILES}
    paper = [name for name, text in texts.items() if "(sentence: str, tokenizer)" in text]
    native = [name for name, text in texts.items() if "(q: int, k: int, w: Window)" in text]
    assert len(paper) >= 8, paper
    assert len(native) + len(paper) == len(texts)


@needs_dsl
@pytest.mark.parametrize("path", PROGRAM_FILES, ids=lambda p: p.stem)
def test_program_validates_named_after_file_with_docstring(path):
    program = load_program(path)
    assert program.name == path.stem
    assert len(program.docstring.split()) >= 5, "docstring must say which head the program models"


@needs_dsl
def test_some_paper_program_uses_a_helper():
    helpers = [load_program(p).helpers for p in PROGRAM_FILES]
    assert any(helpers)


@needs_dsl
@pytest.mark.parametrize("path", PROGRAM_FILES, ids=lambda p: p.stem)
@settings(max_examples=4, deadline=None)
@given(ids=st.lists(st.integers(0, VOCAB.size - 1), min_size=1, max_size=14))
def test_program_gives_causal_row_stochastic_matrix(path, ids):
    matrix = run_reference(load_program(path), ids, VOCAB)
    n = len(ids)
    assert matrix.shape == (n, n)
    assert np.isfinite(matrix).all() and (matrix >= 0).all()
    assert np.allclose(matrix.sum(axis=1), 1.0)
    assert np.allclose(np.triu(matrix, k=1), 0.0)


# ---- exact patterns of the key programs on the hand-built window --------------


@needs_dsl
def test_first_token_is_an_attention_sink():
    expected = np.zeros((N, N))
    expected[:, 0] = 1.0
    np.testing.assert_allclose(run_named("first_token"), expected)


@needs_dsl
def test_self_token_is_the_identity():
    np.testing.assert_allclose(run_named("self_token"), np.eye(N))


@needs_dsl
def test_previous_token_and_k_back():
    np.testing.assert_allclose(run_named("previous_token"), rows_on({q: [q - 1] for q in range(1, N)}))
    np.testing.assert_allclose(run_named("two_back"), rows_on({q: [q - 2] for q in range(2, N)}))
    np.testing.assert_allclose(run_named("three_back"), rows_on({q: [q - 3] for q in range(3, N)}))


@needs_dsl
def test_same_token_earlier_finds_every_earlier_copy():
    # "Ġcat" at 2, 6, 15; "Ġsat" at 3, 7.
    np.testing.assert_allclose(run_named("same_token_earlier"), rows_on({6: [2], 7: [3], 15: [2, 6]}))


@needs_dsl
def test_induction_attends_to_token_after_earlier_copy():
    # cat(6) -> sat(3) follows cat(2); sat(7) -> .(4); cat(15) -> sat(3), sat(7).
    np.testing.assert_allclose(run_named("induction"), rows_on({6: [3], 7: [4], 15: [3, 7]}))
    np.testing.assert_allclose(run_named("induction_latest"), rows_on({6: [3], 7: [4], 15: [7]}))


@needs_dsl
def test_sentence_start():
    targets = {q: [0] for q in range(0, 5)} | {q: [5] for q in range(5, 14)} | {q: [14] for q in range(14, N)}
    np.testing.assert_allclose(run_named("sentence_start"), rows_on(targets))


@needs_dsl
def test_last_punctuation():
    # punctuation at 4 ".", 8 "Ġ(", 12 ")", 13 "!"; rows 0..4 have none before them.
    targets = {q: [4] for q in range(5, 9)} | {q: [8] for q in range(9, 13)} | {13: [12]}
    targets |= {q: [13] for q in range(14, N)}
    np.testing.assert_allclose(run_named("last_punctuation"), rows_on(targets))


@needs_dsl
def test_bracket_match_native_and_paper_agree():
    expected = rows_on({q: [8] for q in range(9, 13)})
    np.testing.assert_allclose(run_named("bracket_match"), expected)
    # The paper form smooths with +1e-4 before normalising.
    np.testing.assert_allclose(run_named("bracket_opener"), expected, atol=5e-3)


@needs_dsl
def test_word_start_joins_subword_pieces():
    # "Ġnap" + "ped" is one word: "ped" attends to "Ġnap".
    np.testing.assert_allclose(run_named("word_start"), rows_on({17: [16]}))


@needs_dsl
def test_sink_previous_mixture():
    expected = np.zeros((N, N))
    expected[0, 0] = expected[1, 0] = 1.0
    for q in range(2, N):
        expected[q, 0] = expected[q, q - 1] = 0.5
    np.testing.assert_allclose(run_named("sink_previous"), expected)


@needs_dsl
def test_sink_previous_self_weights():
    matrix = run_named("sink_previous_self")
    np.testing.assert_allclose(matrix[5, [0, 4, 5]], [0.5, 0.3, 0.2])
    np.testing.assert_allclose(matrix[1, [0, 1]], [0.8, 0.2])


@needs_dsl
def test_decay_050_halves_per_token():
    row = run_named("decay_050")[4, :5]
    np.testing.assert_allclose(row / row[4], [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1])


@needs_dsl
def test_repeated_token_copies_paper_form_matches_native():
    np.testing.assert_allclose(
        run_named("repeated_token_copies"), run_named("same_token_earlier"), atol=5e-3
    )


@needs_dsl
def test_sink_uniform_mixture():
    row = run_named("sink_uniform")[4, :5]
    np.testing.assert_allclose(row, [0.4 + 0.6 / 5, 0.12, 0.12, 0.12, 0.12])


# ---- native programs stay elementwise, so the compiler vectorises them ---------

try:
    from attnc.compiler import compile_program
except ImportError as exc:  # the compiler is built by another area
    compile_program = None
    COMPILER_MISSING = f"attnc.compiler does not provide compile_program yet ({exc})"
else:
    COMPILER_MISSING = ""

NATIVE_FILES = [p for p in PROGRAM_FILES if "(q: int, k: int, w: Window)" in p.read_text(encoding="utf-8")]


@needs_dsl
@pytest.mark.skipif(bool(COMPILER_MISSING), reason=COMPILER_MISSING or "compiler present")
@pytest.mark.parametrize("path", NATIVE_FILES, ids=lambda p: p.stem)
def test_native_program_compiles_to_array_kernel_matching_reference(path, tmp_path):
    program = load_program(path)
    compiled = compile_program(program, backend="numpy", kernel_dir=tmp_path)
    assert compiled.backend == "numpy", compiled.messages
    rng = np.random.default_rng(len(path.stem))
    batch = np.stack([np.array(WINDOW_IDS), rng.integers(0, VOCAB.size, N)])
    expected = np.stack([run_reference(program, row, VOCAB) for row in batch])
    np.testing.assert_allclose(compiled.evaluate(batch, VOCAB), expected, atol=1e-9)
