"""The reference interpreter: realistic programs run to valid matrices, identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.dsl import ProgramRuntimeError, iter_program_files, load_program, parse_program, run_reference
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS
from attnc.window import Vocab

GOOD_DIR = Path(__file__).parent / "dsl_good"
GOOD_FILES = iter_program_files([GOOD_DIR])


def assert_contract(matrix: np.ndarray, n: int, causal: bool = True) -> None:
    assert matrix.shape == (n, n) and matrix.dtype == np.float64
    assert np.isfinite(matrix).all() and (matrix >= 0).all()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    if causal:
        assert not np.triu(matrix, 1).any()


def test_good_corpus_is_large_enough():
    forms = [load_program(p).form for p in GOOD_FILES]
    assert forms.count("paper") >= 15 and forms.count("native") >= 5


@pytest.mark.parametrize("path", GOOD_FILES, ids=lambda p: p.stem)
def test_good_programs_run_on_every_sample_window(path):
    program = load_program(path)
    for ids in SAMPLE_WINDOWS.values():
        assert_contract(run_reference(program, ids, SAMPLE_VOCAB), len(ids))


@settings(max_examples=15, deadline=None)
@given(ids=st.lists(st.integers(0, len(SAMPLE_VOCAB.tokens) - 1), min_size=1, max_size=12),
       index=st.integers(0, len(GOOD_FILES) - 1))
def test_any_window_gives_a_valid_deterministic_matrix(ids, index):
    program = load_program(GOOD_FILES[index])
    first = run_reference(program, ids, SAMPLE_VOCAB)
    assert_contract(first, len(ids))
    np.testing.assert_array_equal(first, run_reference(program, ids, SAMPLE_VOCAB))


def test_native_and_paper_previous_token_agree():
    native = load_program(GOOD_DIR / "native_previous_token.py")
    paper = load_program(GOOD_DIR / "paper_previous_token.py")
    for ids in SAMPLE_WINDOWS.values():
        np.testing.assert_array_equal(run_reference(native, ids, SAMPLE_VOCAB),
                                      run_reference(paper, ids, SAMPLE_VOCAB))


def test_native_same_token_matches_hand_computation():
    program = load_program(GOOD_DIR / "native_same_token.py")
    ids = SAMPLE_WINDOWS["same"]
    expected = np.zeros((5, 5))
    expected[0, 0] = 1.0
    for q in range(1, 5):
        expected[q, q - 1] = 1.0
    np.testing.assert_array_equal(run_reference(program, ids, SAMPLE_VOCAB), expected)


def test_non_causal_keeps_future_weights():
    program = parse_program("def f(q: int, k: int, w: Window) -> float:\n    return 1.0\n")
    out = run_reference(program, [1, 2, 3], SAMPLE_VOCAB, causal=False)
    np.testing.assert_allclose(out, np.full((3, 3), 1 / 3))


def test_tokenizer_adapter_binds_the_window_ids():
    program = parse_program(
        "import numpy as np\n\ndef f(sentence: str, tokenizer):\n"
        "    enc = tokenizer([sentence], return_tensors='pt')\n"
        "    ids = enc.input_ids\n"
        "    n = ids.shape[1]\n"
        "    out = np.zeros((n, n))\n"
        "    same = tokenizer.encode(sentence) == ids[0].tolist() and tokenizer.tokenize(sentence) == "
        "tokenizer.convert_ids_to_tokens(ids[0])\n"
        "    if ids.shape[0] == 1 and same and enc['input_ids'].shape == (1, n) and "
        "len(tokenizer.decode(ids[0])) > 0:\n"
        "        out[:, 0] = 1.0\n"
        "    return 'check', out + np.eye(n) * 0\n"
    )
    ids = SAMPLE_WINDOWS["quote"]
    out = run_reference(program, ids, SAMPLE_VOCAB)
    assert (out[:, 0] == 1.0).all()


@pytest.mark.parametrize("body, fragment, line", [
    ("    return 1.0 / (q - q)\n", "ZeroDivisionError", 2),
    ("    return w.tok[q]\n", "expected a number", None),
    ("    return float(w.ids[q + 100])\n", "IndexError", 2),
    ("    return float('nan')\n", "NaN", None),
])
def test_runtime_failures_name_the_program_and_window(body, fragment, line):
    program = parse_program("def broken(q: int, k: int, w: Window) -> float:\n" + body)
    with pytest.raises(ProgramRuntimeError) as info:
        run_reference(program, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    message = str(info.value)
    assert "broken" in message and "The cat sat" in message and fragment in message
    assert info.value.line == line


def test_paper_form_wrong_shape_is_a_runtime_error():
    program = parse_program("import numpy as np\n\ndef f(sentence, tokenizer):\n    return 'x', np.zeros((2, 3))\n")
    with pytest.raises(ProgramRuntimeError, match="shape"):
        run_reference(program, [1, 2], SAMPLE_VOCAB)


def test_window_inputs_are_read_only_between_calls():
    """A native program cannot change what later (q, k) pairs see."""
    program = parse_program(
        "def f(q: int, k: int, w: Window) -> float:\n    w.ids[0] = 99\n    return 1.0\n")
    with pytest.raises(ProgramRuntimeError, match="read-only"):
        run_reference(program, [1, 2, 3], SAMPLE_VOCAB)


def test_program_state_does_not_leak_between_windows():
    program = parse_program(
        "SEEN = []\n\ndef f(q: int, k: int, w: Window) -> float:\n"
        "    SEEN.append(1)\n    return float(len(SEEN))\n")
    vocab = Vocab(tokens=("a", "b"))
    first = run_reference(program, [0, 1], vocab, causal=False)
    np.testing.assert_array_equal(first, run_reference(program, [0, 1], vocab, causal=False))


def _plain_run(program, ids):
    """Run the validated AST with plain Python and numpy (no guards) — the semantics to preserve."""
    import ast
    import builtins
    import copy

    from attnc.dsl.tokenizer_adapter import TokenizerAdapter
    from attnc.output_rule import apply_output_rule
    from attnc.window import Window

    module = copy.deepcopy(program.module)
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef):
            node.returns = None
            for arg in node.args.args:
                arg.annotation = None
        if isinstance(node, ast.AnnAssign):
            node.annotation = ast.Constant(None)
    import collections
    import re

    namespace = {"__builtins__": builtins, "np": np, "re": re, "defaultdict": collections.defaultdict,
                 "Counter": collections.Counter}
    exec(compile(ast.fix_missing_locations(module), "<plain>", "exec"), namespace)
    entry = namespace[program.name]
    window = Window(ids, SAMPLE_VOCAB)
    if program.form == "native":
        raw = np.array([[float(entry(q, k, window)) for k in range(window.n)] for q in range(window.n)])
    else:
        raw = entry(window.text, TokenizerAdapter(window))
        raw = raw[1] if isinstance(raw, tuple) else raw
    return apply_output_rule(raw)


#: Programs using tensor spellings (`.numpy()`, `.cpu()`) that plain NumPy arrays lack;
#: tests/test_dsl_real_tokenizer.py runs them in CPython with a real tokenizer and torch tensors.
TENSOR_IDIOM_FILES = [p for p in GOOD_FILES if ".numpy()" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", [p for p in GOOD_FILES if p not in TENSOR_IDIOM_FILES], ids=lambda p: p.stem)
def test_guards_do_not_change_results(path):
    program = load_program(path)
    for ids in SAMPLE_WINDOWS.values():
        with np.errstate(all="ignore"):
            expected = _plain_run(program, ids)
        np.testing.assert_array_equal(run_reference(program, ids, SAMPLE_VOCAB), expected)


@pytest.mark.parametrize("call, expected_n", [
    ("tokenizer(sentence)['input_ids']", 14),
    ("tokenizer([sentence])['input_ids'][0]", 14),
    ("tokenizer(sentence, return_tensors='pt').input_ids[0]", 14),
    ("tokenizer([sentence], return_tensors='np')['input_ids'][0]", 14),
    ("tokenizer.encode(sentence)", 14),
    ("tokenizer.encode(sentence, return_tensors='pt')[0]", 14),
    ("tokenizer(sentence, return_tensors='pt').input_ids.squeeze().numpy()", 14),
])
def test_tokenizer_call_shapes_follow_hugging_face(call, expected_n):
    program = parse_program(
        "import numpy as np\n\ndef f(sentence: str, tokenizer):\n"
        f"    ids = {call}\n    n = len(ids)\n    return 'n', np.eye(n)\n")
    ids = SAMPLE_WINDOWS["quote"]
    assert len(ids) == expected_n
    np.testing.assert_array_equal(run_reference(program, ids, SAMPLE_VOCAB), np.eye(expected_n))
