"""Paper-form programs give the same matrix in the sandbox as in CPython with a real tokenizer.

Each program of tests/dsl_good is run twice on the same sentences: by the
reference interpreter, on the window's ids with the tokenizer adapter, and as
plain Python (its own imports, real `re`, `collections`, torch tensors) with a
real Hugging Face fast tokenizer (the in-process byte-level BPE of
`attnc.runtime.models.tiny_tokenizer`). The corpus is the project's own
trusted test code, so executing its source here is intended.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnc.dsl import iter_program_files, load_program, run_reference
from attnc.output_rule import apply_output_rule
from attnc.window import Vocab

GOOD_DIR = Path(__file__).parent / "dsl_good"
PAPER_FILES = [p for p in iter_program_files([GOOD_DIR]) if p.name.startswith("paper_")]
SENTENCES = [
    "The cat sat on the mat. It was happy!",
    'She said "hello" (quietly) and he laughed?',
    "The dog's bone [1] was buried in 2024, wasn't it?",
    "<|endoftext|>Tom said: it's   fine...\n\nReally?!",
]


@pytest.fixture(scope="module")
def tokenizer():
    from attnc.runtime.models import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return Vocab.from_tokenizer(tokenizer)


def _cpython_matrix(path: Path, name: str, sentence: str, tokenizer) -> np.ndarray:
    namespace: dict = {}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    raw = namespace[name](sentence, tokenizer)
    raw = raw[1] if isinstance(raw, tuple) else raw
    return apply_output_rule(np.asarray(raw, dtype=np.float64))


def test_adapter_values_equal_the_real_tokenizer(tokenizer, vocab):
    from attnc.dsl.tokenizer_adapter import TokenizerAdapter
    from attnc.window import Window

    for sentence in SENTENCES:
        real = tokenizer(sentence, return_offsets_mapping=True)
        ids = real["input_ids"]
        window = Window(ids, vocab)
        assert window.text == sentence
        adapter = TokenizerAdapter(window)
        ours = adapter(sentence, return_offsets_mapping=True)
        assert ours.tokens() == real.tokens()
        assert [tuple(o) for o in ours.offset_mapping] == [tuple(o) for o in real["offset_mapping"]]
        assert [ours.token_to_chars(i) for i in range(len(ids))] == [tuple(real.token_to_chars(i))
                                                                   for i in range(len(ids))]
        assert adapter.convert_tokens_to_ids(real.tokens()) == tokenizer.convert_tokens_to_ids(real.tokens())
        assert adapter.batch_decode([[i] for i in ids]) == tokenizer.batch_decode([[i] for i in ids])
        assert ours.word_ids() == real.word_ids() and ours.words() == real.word_ids()
        assert [ours.token_to_word(i) for i in range(len(ids))] == [real.token_to_word(i) for i in range(len(ids))]
    for role in ("bos", "eos", "pad", "unk", "cls", "sep", "mask"):
        assert getattr(adapter, f"{role}_token_id") == getattr(tokenizer, f"{role}_token_id")
        assert getattr(adapter, f"{role}_token") == getattr(tokenizer, f"{role}_token")
    assert adapter.all_special_tokens == tokenizer.all_special_tokens
    assert adapter.get_vocab() == tokenizer.get_vocab() and len(adapter) == len(tokenizer)


@pytest.mark.parametrize("path", PAPER_FILES, ids=lambda p: p.stem)
def test_sandbox_equals_cpython_with_a_real_tokenizer(path, tokenizer, vocab):
    program = load_program(path)
    for sentence in SENTENCES:
        ids = tokenizer(sentence)["input_ids"]
        ours = run_reference(program, ids, vocab)
        with np.errstate(all="ignore"):
            expected = _cpython_matrix(path, program.name, sentence, tokenizer)
        np.testing.assert_allclose(ours, expected, atol=1e-6, err_msg=f"{path.name} on {sentence!r}")
