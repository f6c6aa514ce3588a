"""`import spacy` (the optional extra): validation always; parses only where spaCy and the model are installed.

With the extra, programs in tests/dsl_spacy give the same matrix in the
sandbox (a frozen, cached parse of the window's text) as in CPython with the
real pipeline and a real tokenizer. Without it, `spacy.load` stops the
program with a clear error naming the extra.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from attnc.dsl import ProgramError, ProgramRuntimeError, iter_program_files, load_program, parse_program, run_reference
from attnc.dsl import spacy_support
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS
from attnc.output_rule import apply_output_rule
from attnc.window import Vocab

SPACY_FILES = iter_program_files([Path(__file__).parent / "dsl_spacy"])
HEAD = "import numpy as np\nimport spacy\n\nnlp = spacy.load('en_core_web_sm')\n\n\ndef f(sentence, tokenizer):\n"
SENTENCES = ["The quick brown fox jumped over the lazy dog. Mary lives in Paris.",
             'She said "hello" (quietly) and he laughed?']
needs_extra = pytest.mark.skipif(not spacy_support.available(), reason="the attnc[spacy] extra is not installed")


def program(*lines: str, head: str = HEAD) -> str:
    return head + "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize("source, rule", [
    (program("return 'x', np.eye(3)", head=HEAD.replace("en_core_web_sm", "en_core_web_trf")), "spacy"),
    (program("nlp2 = spacy.blank('en')", "return 'x', np.eye(3)"), "spacy"),
    (program("x = spacy.cli", "return 'x', np.eye(3)"), "spacy"),
    (program("doc = nlp(sentence)", "x = doc._.extension", "return 'x', np.eye(3)"), "attribute"),
    (program("doc = nlp(sentence)", "x = doc.__class__", "return 'x', np.eye(3)"), "dunder"),
    (program("return 'x', np.eye(3)", head=HEAD.replace("import spacy\n", "")), "constant"),
])
def test_spacy_rules(source, rule):
    with pytest.raises(ProgramError) as info:
        parse_program(source, "s.py")
    assert rule in {d.rule for d in info.value.diagnostics}
    assert all(d.line >= 1 and d.col >= 1 and d.hint for d in info.value.diagnostics)


def test_without_the_extra_load_is_a_clear_error(monkeypatch):
    def missing():
        raise spacy_support.GuardError(spacy_support.MISSING_EXTRA)

    monkeypatch.setattr(spacy_support, "_model", missing)
    with pytest.raises(ProgramRuntimeError, match=r"attnc\[spacy\]") as info:
        run_reference(load_program(SPACY_FILES[0]), SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    assert info.value.line == 4


@needs_extra
def test_views_are_read_only_and_bound_to_the_window():
    source = program("doc = nlp(sentence)", "n = len(tokenizer.encode(sentence))", "t = doc[0]",
                     "x = [t.text, t.i, t.idx, t.pos_, t.tag_, t.dep_, t.head.i, len(t.children), t.lemma_,",
                     "     t.is_stop, t.is_punct, t.is_alpha, t.ent_type_, t.like_num]",
                     "s = [(s.start, s.end, s.text) for s in doc.sents] + [(e.start, e.end) for e in doc.ents]",
                     "return 'x', np.eye(n)")
    run_reference(parse_program(source), SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    for line in ("doc = nlp('other text')", "doc = nlp(sentence)\n    v = doc.vocab",
                 "doc = nlp(sentence)\n    v = doc[0].vocab"):
        with pytest.raises(ProgramRuntimeError) as info:
            run_reference(parse_program(program(line, "return 'x', np.eye(2)")), SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
        assert type(info.value.cause).__name__ == "GuardError"


@needs_extra
def test_one_cached_parse_per_window():
    prog = load_program(SPACY_FILES[0])
    run_reference(prog, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    before = spacy_support.parse.cache_info().misses
    run_reference(prog, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    assert spacy_support.parse.cache_info().misses == before


@needs_extra
@pytest.mark.parametrize("path", SPACY_FILES, ids=lambda p: p.stem)
def test_sandbox_equals_cpython_with_real_spacy(path):
    from attnc.runtime.models import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    vocab = Vocab.from_tokenizer(tokenizer)
    checked = load_program(path)
    real_spacy = types.SimpleNamespace(load=lambda name: spacy_support._model())
    for sentence in SENTENCES:
        ids = tokenizer(sentence)["input_ids"]
        ours = run_reference(checked, ids, vocab)
        source = path.read_text(encoding="utf-8").replace("import spacy\n", "")
        namespace = {"spacy": real_spacy}
        exec(compile(source, str(path), "exec"), namespace)  # the project's own test program
        raw = namespace[checked.name](sentence, tokenizer)
        np.testing.assert_allclose(ours, apply_output_rule(np.asarray(raw[1], dtype=np.float64)), atol=1e-6)
