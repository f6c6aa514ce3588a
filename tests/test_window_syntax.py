"""Syntax window features (w.pos, w.tag, w.dep, w.lemma, w.ent_type, w.dep_head): the spaCy extra's parse,
aligned to the model's tokens, lazily parsed, one parse per window, equal on every backend.

The equivalence chain on real text (attnc/data/stories.txt): a native program reading
`w.dep_head`, compiled to every backend, equals tests/dsl_spacy/paper_spacy_dep_head.py in the
sandbox, which tests/test_dsl_spacy.py checks against CPython with the real spaCy pipeline.
Tests that parse are skipped where the extra is not installed; the missing-extra errors are
tested everywhere (by pretending it is missing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnc.compiler import WindowError, compile_program, evaluate_library
from attnc.dsl import ProgramError, ProgramRuntimeError, load_program, parse_program, run_reference
from attnc.dsl import spacy_support
from attnc.window import Vocab, Window, window_features
from attnc.window_syntax import SYNTAX_FEATURE_NAMES, _window_syntax, label_code, window_syntax

needs_extra = pytest.mark.skipif(not spacy_support.available(), reason="the attnc[spacy] extra is not installed")
ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("numpy", "numba", "torch")

NATIVE = {
    "head": "def head(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == w.dep_head[q] else 0.0\n",
    "nouns": ("def nouns(q: int, k: int, w: Window) -> float:\n"
              "    return 1.0 if k <= q and w.pos[k] in {'NOUN', 'PROPN'} else 0.0\n"),
    "same_dep": ("def same_dep(q: int, k: int, w: Window) -> float:\n"
                 "    return 2.0 if w.dep[q] == w.dep[k] and w.lemma[k] != 'be' and w.tag[k] not in ('DT', 'IN') "
                 "else 0.1\n"),
    "entities": ("def entities(q: int, k: int, w: Window) -> float:\n"
                 "    return 1.0 if w.ent_type[k] != '' and w.ent_type[k] == w.ent_type[q] else 0.0\n"),
    "verbs_before": ("def verbs_before(q: int, k: int, w: Window) -> float:\n    s = 0.0\n"
                     "    for p in range(k):\n        if w.pos[p] == 'VERB':\n            s += 1.0\n"
                     "    return s if w.dep[q] != 'ROOT' else 1.0\n"),
}


@pytest.fixture(scope="module")
def text_windows():
    """Windows of 40 tokens of the shipped stories, as a real byte-level tokenizer cuts them."""
    from attnc.runtime.models import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    text = (ROOT / "attnc" / "data" / "stories.txt").read_text(encoding="utf-8")[:6000]
    ids = tokenizer(text)["input_ids"]
    windows = np.array([ids[i:i + 40] for i in range(0, 40 * 6, 40)], dtype=np.int64)
    return Vocab.from_tokenizer(tokenizer), windows


def _parse_counter(monkeypatch) -> list[str]:
    """Record the texts spaCy parses from now on (the caches start empty)."""
    spacy_support.parse.cache_clear()
    _window_syntax.cache_clear()
    parsed: list[str] = []
    model = spacy_support._model

    def counting_model():
        nlp = model()
        return lambda text: (parsed.append(text), nlp(text))[1]

    monkeypatch.setattr(spacy_support, "_model", counting_model)
    return parsed


@needs_extra
def test_alignment_and_neutral_values(text_windows):
    vocab, windows = text_windows
    for ids in windows:
        syntax = window_syntax(ids, vocab)
        window = Window(ids, vocab)
        assert set(syntax.labels) | {"dep_head"} == set(SYNTAX_FEATURE_NAMES)
        for p, token in enumerate(window.tok):
            head = int(syntax.dep_head[p])
            if token.replace("Ġ", " ").replace("Ċ", "\n").isspace():
                assert head == -1 and all(labels[p] == "" for labels in syntax.labels.values())
                continue
            assert syntax.labels["pos"][p] and syntax.labels["dep"][p]
            assert 0 <= head < len(ids) and syntax.dep_head[head] >= 0  # a word's token, never whitespace
            if syntax.labels["dep"][p] == "ROOT":
                assert syntax.labels["dep"][head] == "ROOT" and syntax.dep_head[head] == head
        assert not syntax.dep_head.flags.writeable


@needs_extra
@pytest.mark.parametrize("name", sorted(NATIVE))
def test_every_backend_equals_the_interpreter(name, text_windows):
    vocab, windows = text_windows
    program = parse_program(NATIVE[name], f"{name}.py")
    reference = np.stack([run_reference(program, ids, vocab) for ids in windows])
    for backend in BACKENDS:
        compiled = compile_program(program, backend=backend)
        if name == "verbs_before" and backend != "numba":
            assert compiled.backend == "interpreted"  # a loop: no array form
        else:
            assert compiled.backend == backend, compiled.messages
        np.testing.assert_allclose(compiled.evaluate(windows, vocab), reference, atol=1e-12)


@needs_extra
def test_native_dep_head_equals_the_paper_form_spacy_program(text_windows):
    vocab, windows = text_windows
    paper = load_program(ROOT / "tests" / "dsl_spacy" / "paper_spacy_dep_head.py")
    native = parse_program(NATIVE["head"], "head.py")
    for ids in windows:
        expected = run_reference(paper, ids, vocab, causal=False)
        np.testing.assert_allclose(run_reference(native, ids, vocab, causal=False), expected, atol=1e-12)
        for backend in BACKENDS:
            compiled = compile_program(native, backend=backend)
            np.testing.assert_allclose(compiled.evaluate(ids[None], vocab, causal=False)[0], expected, atol=1e-12)


def test_label_uses_outside_comparisons_run_interpreted():
    for body in ("1.0 if w.pos[k].lower() == 'noun' else 0.0", "1.0 if w.pos[k] == w.tok[k] else 0.0",
                 "1.0 if w.lemma[k] < 'm' else 0.0", "float(len(w.lemma[k]))", "1.0 if w.dep[k] == 3 else 0.0"):
        compiled = compile_program(parse_program(f"def f(q: int, k: int, w: Window) -> float:\n    return {body}\n"),
                                   probe=False)
        assert compiled.backend == "interpreted", body
    assert label_code("") == 0 and label_code("NOUN") == label_code("NOUN") != label_code("PROPN")


@needs_extra
def test_parsing_is_lazy_and_once_per_window(text_windows, monkeypatch):
    vocab, windows = text_windows
    plain = compile_program(parse_program(
        "def plain(q: int, k: int, w: Window) -> float:\n    return 1.0 if w.is_punct[k] and k <= q else 0.0\n"))
    programs = [compile_program(parse_program(text, f"{name}.py")) for name, text in NATIVE.items()]  # probes parse
    parsed = _parse_counter(monkeypatch)
    plain.evaluate(windows, vocab)
    window_features(windows, vocab)
    run_reference(plain.program, windows[0], vocab)
    assert parsed == []  # nothing that does not read syntax parses
    result = evaluate_library(programs, windows, vocab)
    assert not result.errors
    paper = load_program(ROOT / "tests" / "dsl_spacy" / "paper_spacy_dep_head.py")
    for ids in windows:
        run_reference(paper, ids, vocab)
        run_reference(programs[0].program, ids, vocab)
    for program in programs:
        program.evaluate(windows, vocab)
    assert sorted(parsed) == sorted(vocab.decode(ids) for ids in windows)  # one parse per window, for all


def test_without_the_extra_validation_names_it(monkeypatch):
    monkeypatch.setattr(spacy_support, "installed", lambda: False)
    with pytest.raises(ProgramError) as info:
        parse_program("def f(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == w.dep_head[q] else 0.0\n",
                      "syn.py")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.path, diagnostic.line, diagnostic.col, diagnostic.rule) == ("syn.py", 2, 24, "spacy")
    assert "pip install 'attnc[spacy]'" in str(diagnostic)
    parse_program("def g(q: int, k: int, w: Window) -> float:\n    return 1.0 if w.is_det[k] else 0.0\n")


def test_a_broken_extra_is_an_error_naming_it_not_a_crash(monkeypatch):
    from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS

    def missing():
        raise spacy_support.GuardError(spacy_support.MISSING_EXTRA)

    monkeypatch.setattr(spacy_support, "installed", lambda: True)
    monkeypatch.setattr(spacy_support, "_model", missing)
    spacy_support.parse.cache_clear()
    _window_syntax.cache_clear()
    program = parse_program(NATIVE["head"], "head.py")
    with pytest.raises(ProgramRuntimeError, match=r"attnc\[spacy\]") as info:
        run_reference(program, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    assert info.value.line == 2
    ids = np.asarray(SAMPLE_WINDOWS["cat"])[None]
    compiled = compile_program(program, backend="numpy", probe=False)
    with pytest.raises(WindowError, match=r"attnc\[spacy\]"):
        compiled.evaluate(ids, SAMPLE_VOCAB)
    other = compile_program(parse_program("def prev(q: int, k: int, w: Window) -> float:\n"
                                          "    return 1.0 if k == q - 1 else 0.0\n"), probe=False)
    result = evaluate_library([compiled, other], ids, SAMPLE_VOCAB)
    assert set(result.errors) == {"head"} and "prev" in result.matrices


@needs_extra
def test_nothing_of_spacy_is_reachable_at_run_time(text_windows):
    vocab, windows = text_windows
    for line in ("x = w.dep_head.tolist().doc", "x = w.lemma.count.doc", "x = w.pos.user_data"):
        with pytest.raises(ProgramError):
            parse_program(f"def f(q: int, k: int, w: Window) -> float:\n    {line}\n    return 1.0\n")
    for line in ("x = w.pos.vocab", "w.dep_head[0] = 3", "x = w.tag[0].head", "x = w.dep.children"):
        program = parse_program(f"def f(q: int, k: int, w: Window) -> float:\n    {line}\n    return 1.0\n")
        with pytest.raises(ProgramRuntimeError):
            run_reference(program, windows[0], vocab)
    view = Window(windows[0], vocab)
    assert type(view.pos) is tuple and all(type(label) is str for label in view.pos)
    assert type(view.dep_head) is np.ndarray and view.dep_head.dtype == np.int64
