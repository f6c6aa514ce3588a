"""Getting program sources out of LLM replies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.synth.extraction import extract_sources
from attnc.synth.output import clean_name, provenance_header, rename_entry

CODE = 'def f(q: int, k: int, w: Window) -> float:\n    return 1.0\n'


def test_fenced_blocks_with_and_without_language_and_several_per_reply():
    reply = f"Idea:\n```python\n{CODE}```\nor\n```\n{CODE.replace('f(', 'g(')}```\n```text\ndef h(): prose\n```\n```python\nimport numpy as np\n```"
    assert extract_sources(reply, max_bytes=1000).sources == (CODE, CODE.replace("f(", "g("))


def test_bare_code_drops_trailing_prose_and_unclosed_fence_runs_to_the_end():
    assert extract_sources(f"Sure!\n{CODE}\nThis works because...", max_bytes=1000).sources == (CODE,)
    assert extract_sources(f"```python\n{CODE}", max_bytes=1000).sources == (CODE,)


def test_no_code_and_too_large():
    assert extract_sources("The head looks at the previous token.", max_bytes=1000).problem == "no_code"
    assert extract_sources("```python\nx = 1\n```", max_bytes=1000).problem == "no_code"
    big = extract_sources("```python\n" + CODE + "# pad\n" * 500 + "```", max_bytes=1000)
    assert big.problem == "too_large" and big.oversized == 1
    huge = extract_sources("x" * 5000, max_bytes=1000)
    assert huge.problem == "too_large"


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_sources_with_a_def_or_a_reason(text):
    result = extract_sources(text, max_bytes=200)
    assert (result.problem is None) == bool(result.sources)
    assert all("def" in s and len(s.encode()) <= 200 for s in result.sources)


def test_names_rename_and_header():
    assert clean_name("Previous-Token Head!") == "previous_token_head"
    assert clean_name("3back") == "p_3back" and clean_name("class") == "class_program" and clean_name("__") == "program"
    assert rename_entry(CODE, "f", "prev") .startswith("def prev(")
    header = provenance_header({"model": "m\nx", "head": "1.2"})
    assert header.splitlines() == ["# Written by attnc synth from an LLM candidate; review before trusting it.",
                                   "# model: m x", "# head: 1.2"]


def test_system_prompt_examples_pass_the_dsl():
    import pytest

    dsl = pytest.importorskip("attnc.dsl", reason="the DSL package is not importable")
    if not hasattr(dsl, "parse_program"):
        pytest.skip("attnc.dsl has no parse_program yet")
    from attnc.synth.prompting import SYSTEM_PROMPT
    from attnc.synth.validation import dsl_validate

    sources = extract_sources(SYSTEM_PROMPT, max_bytes=10_000).sources
    results = [dsl_validate(s, "<system prompt>") for s in sources]
    assert [(r.name, r.form) for r in results] == [("previous_token", "native"), ("same_token_earlier", "paper")]


def test_native_entry_without_annotations_is_annotated_then_validated():
    from attnc.synth.extraction import annotate_entry
    from attnc.synth.validation import as_failure, dsl_validate

    bare = "def previous_token(q, k, w):  # small models write this\n    return 1.0 if k == q - 1 else 0.0\n"
    assert as_failure(dsl_validate(bare, "<bare>")) is not None, "the DSL itself wants the annotations"
    (fixed,) = extract_sources(f"```python\n{bare}```", max_bytes=1000).sources
    assert fixed.splitlines()[0] == ("def previous_token(q: int, k: int, w: Window) -> float:"
                                     "  # small models write this")
    assert dsl_validate(fixed, "<fixed>").form == "native"
    partial = "def p(q: int, k: int, w) -> float:\n    return 1.0\n"
    assert annotate_entry(partial).startswith("def p(q: int, k: int, w: Window) -> float:\n")
    # an annotated entry is left alone, and so is a helper beside it; other signatures too
    helper = f"def helper(q, k, w):\n    return 1.0\n\n{CODE}"
    assert annotate_entry(helper) == helper
    for other in ("def f(a, b):\n    return 1\n", "def g(q, k):\n    return 1\n", "    def h(q, k, w):\n        return 1\n"):
        assert annotate_entry(other) == other


#: What SmolLM2-135M answered through `transformers serve` for head 16.0 (shortened): the
#: prompt's two examples copied into one block, then a third function cut off at the token limit.
SMALL_MODEL_REPLY = '''Here is a Python program that reproduces the attention pattern of the head 36.0:
```python
import numpy as np

def previous_token(q: int, k: int, w: Window) -> float:
    """Each token attends to the token just before it."""
    return 1.0 if k == q - 1 else 0.0

def same_token_earlier(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each token attends to earlier copies of itself."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
            if tokens[i] == tokens[j]:
                out[i, j] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "same token earlier", out

def same_token_earlier_to_batch(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each token attends to earlier copies of itself."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
                out[i'''


def test_a_cut_off_block_of_copied_examples_gives_one_valid_candidate_per_entry():
    from attnc.synth.validation import dsl_validate

    sources = extract_sources(SMALL_MODEL_REPLY, max_bytes=10_000).sources
    assert [dsl_validate(s, "<c>").name for s in sources] == ["previous_token", "same_token_earlier"]
    assert all(s.startswith("import numpy as np\n") for s in sources)
    # a closed block keeps its last function; helpers called by the entry stay with it
    helper = ("```python\ndef near(q, k):\n    return k >= q - 2\n\n"
              "def recent(q: int, k: int, w: Window) -> float:\n    return 1.0 if near(q, k) else 0.0\n```")
    (source,) = extract_sources(helper, max_bytes=10_000).sources
    assert dsl_validate(source, "<h>").name == "recent" and "def near" in source
    # one unfinished function alone is kept (the DSL then says what is wrong with it)
    (cut,) = extract_sources("```python\ndef f(q: int, k: int, w: Window) -> float:\n    return (", max_bytes=1000).sources
    assert cut.startswith("def f(")
