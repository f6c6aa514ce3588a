"""Corpora and windows: reading formats, tokenize-once windows, seeded splits, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.runtime.corpus import (
    TEXT_SEPARATOR,
    Corpus,
    CorpusError,
    WindowTooLongError,
    check_window_fits,
    make_windows,
    read_corpus,
    split_windows,
)
from attnc.runtime.models import tiny_model, tiny_tokenizer

TINYSTORIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinystories" / "valid-dev.txt"
if not TINYSTORIES.is_file():
    TINYSTORIES = Path("/work/shared/data/tinystories/valid-dev.txt")

STORY = (
    "Once upon a time, there was a little girl named Lily. She liked to play. "
    "One day she saw a big red ball! \"Can I have it?\" she asked. Her mom said yes.\n"
    "They went home and ate cake. The end."
)


def test_plain_text_paragraphs(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("First one.\nstill first.\n\n\n  Second.  \n\n", encoding="utf-8")
    corpus = read_corpus(path)
    assert corpus.texts == ("First one.\nstill first.", "Second.")
    assert corpus.source == str(path)


def test_jsonl_and_same_texts_same_hash(tmp_path):
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"body": t}) for t in ["A b.", "C d."]) + "\n")
    (tmp_path / "a.txt").write_text("A b.\n\nC d.\n")
    from_jsonl = read_corpus(tmp_path / "a.jsonl", text_field="body")
    assert from_jsonl.texts == ("A b.", "C d.")
    assert from_jsonl.sha256 == read_corpus(tmp_path / "a.txt").sha256
    assert from_jsonl.sha256 != Corpus.from_texts(["A b.", "C d!"]).sha256


def test_jsonl_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "no"}\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: no string field 'text'"):
        read_corpus(bad)
    bad.write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: invalid JSON"):
        read_corpus(bad)


def test_directory_sorted_and_hidden_skipped(tmp_path):
    (tmp_path / "b.txt").write_text("Bee.")
    (tmp_path / "a.txt").write_text("Ay.")
    (tmp_path / ".hidden.txt").write_text("Hidden.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jsonl").write_text('{"text": "Sea."}\n')
    assert read_corpus(tmp_path).texts == ("Ay.", "Bee.", "Sea.")


def test_missing_and_empty_corpus(tmp_path):
    with pytest.raises(CorpusError, match="no such corpus"):
        read_corpus(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n\n   \n")
    with pytest.raises(CorpusError, match="no text"):
        read_corpus(tmp_path / "empty.txt")
    (tmp_path / "d").mkdir()
    with pytest.raises(CorpusError, match="directory has no files"):
        read_corpus(tmp_path / "d")


def test_fixed_windows_are_the_joined_stream():
    tok = tiny_tokenizer()
    texts = [STORY, "A second story. It is short.", STORY.upper()]
    windows = make_windows(Corpus.from_texts(texts), tok, window=8, heldout_fraction=0.25, seed=3)
    stream = tok(TEXT_SEPARATOR.join(texts), add_special_tokens=False).input_ids
    # Tokenizing texts separately and joining with the separator's tokens can
    # differ from tokenizing the joined text only at the joins; this text has
    # none of those merges, so the streams are equal.
    n = len(stream) // 8
    assert windows.ids.shape == (n, 8)
    assert windows.ids.dtype == np.int64
    assert np.array_equal(windows.ids.reshape(-1), np.asarray(stream[: n * 8]))
    assert windows.n_stream_tokens == len(stream)
    assert windows.split.sum() == round(n * 0.25)
    assert np.array_equal(np.concatenate([windows.fit_ids, windows.heldout_ids]).shape, (n, 8))
    description = windows.describe()
    json.dumps(description)
    assert description["tokenizer"] == "attnc-tiny-bpe-512"
    assert description["n_fit"] + description["n_heldout"] == n


def test_sentence_windows_start_at_sentence_starts():
    tok = tiny_tokenizer()
    texts = [STORY] * 3
    windows = make_windows(Corpus.from_texts(texts), tok, window=6, mode="sentence")
    stream = np.asarray(tok(TEXT_SEPARATOR.join(texts), add_special_tokens=False).input_ids)
    assert len(windows) >= 4
    previous_end = 0
    for row in windows.ids:
        matches = [p for p in range(previous_end, len(stream) - 5) if np.array_equal(stream[p:p + 6], row)]
        assert matches, "every window is a run of the stream, in order, without overlap"
        start = matches[0]
        before = tok.decode(stream[:start].tolist()).rstrip(" ")
        assert before == "" or before.endswith((".", "!", "?", '."', '?"', "\n")), before[-20:]
        previous_end = start + 6
    assert tok.decode(windows.ids[0].tolist()).startswith("Once upon")


def test_split_is_seeded_and_balanced():
    a, b, c = split_windows(101, 0.3, 7), split_windows(101, 0.3, 7), split_windows(101, 0.3, 8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.sum() == 30
    assert split_windows(2, 0.01, 0).sum() == 1 and split_windows(2, 0.99, 0).sum() == 1
    assert split_windows(5, 0.0, 0).sum() == 0 and split_windows(5, 1.0, 0).sum() == 5


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 200), fraction=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_split_property(n, fraction, seed):
    split = split_windows(n, fraction, seed)
    assert split.shape == (n,) and split.dtype == bool
    if 0.0 < fraction < 1.0:
        assert 1 <= split.sum() <= n - 1
    assert abs(int(split.sum()) - n * fraction) <= 1


def test_too_few_windows_is_a_clear_error():
    tok = tiny_tokenizer()
    with pytest.raises(CorpusError, match="at least 2 are needed"):
        make_windows(Corpus.from_texts(["Tiny text."]), tok, window=16)
    with pytest.raises(CorpusError, match="no text"):
        make_windows(Corpus.from_texts([]), tok)
    with pytest.raises(CorpusError, match="unknown window mode"):
        make_windows(Corpus.from_texts([STORY]), tok, mode="words")
    with pytest.raises(CorpusError, match="heldout_fraction"):
        make_windows(Corpus.from_texts([STORY]), tok, window=4, heldout_fraction=1.5)


def test_max_windows_keeps_the_first_windows():
    tok = tiny_tokenizer()
    corpus = Corpus.from_texts([STORY] * 600)  # more than one tokenizer chunk
    full = make_windows(corpus, tok, window=16)
    few = make_windows(corpus, tok, window=16, max_windows=3)
    assert np.array_equal(few.ids, full.ids[:3])
    assert few.n_stream_tokens < full.n_stream_tokens


def test_skip_windows_leaves_out_the_first_windows():
    tok = tiny_tokenizer()
    corpus = Corpus.from_texts([STORY] * 600)
    full = make_windows(corpus, tok, window=16)
    later = make_windows(corpus, tok, window=16, skip_windows=5, max_windows=4)
    assert np.array_equal(later.ids, full.ids[5:9])
    assert np.array_equal(make_windows(corpus, tok, window=16, skip_windows=5).ids, full.ids[5:])
    with pytest.raises(CorpusError, match="after skipping"):
        make_windows(corpus, tok, window=16, skip_windows=len(full.ids) - 1)


def test_check_window_fits():
    loaded = tiny_model("gpt2", max_positions=64)
    check_window_fits(64, loaded)
    with pytest.raises(WindowTooLongError, match="context of 64 tokens"):
        check_window_fits(65, loaded)


@pytest.mark.skipif(not TINYSTORIES.is_file(), reason="shared TinyStories data (../shared/data) is absent")
def test_tinystories_windows():
    corpus = read_corpus(TINYSTORIES)
    assert len(corpus.texts) > 2000
    tok = tiny_tokenizer()
    for mode in ("fixed", "sentence"):
        windows = make_windows(corpus, tok, window=64, mode=mode, max_windows=200, seed=1)
        assert windows.ids.shape == (200, 64)
        assert 90 <= windows.split.sum() <= 110
        assert windows.corpus_sha256 == corpus.sha256
