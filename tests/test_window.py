"""The program inputs: Vocab tables and per-position window features."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.window import FEATURE_NAMES, Vocab, Window, window_features

TOKENS = ("<s>", "The", "Ġcat", "Ġsat", ".", "ĠIt", "Ġwas", 'Ġ"', "Ġhappy", '"', "Ċ", "Ġ(", ")", ",", "Ġthe")
VOCAB = Vocab(tokens=TOKENS, special_ids=frozenset({0}))


def tok_ids(*tokens: str) -> list[int]:
    return [TOKENS.index(t) for t in tokens]


def test_features_of_a_hand_built_window():
    ids = tok_ids("The", "Ġcat", "Ġsat", ".", "ĠIt", "Ġwas", 'Ġ"', "Ġhappy", '"', "Ċ", "The", "Ġcat", "Ġ(", "Ġcat", ")")
    w = Window(ids, VOCAB)
    assert w.n == 15
    assert w.tok[1] == "Ġcat"
    assert w.text.startswith("The cat sat. It was")
    assert w.is_punct.astype(int).tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1]
    assert w.sent_id.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert bool(w.word_start[10])  # first token after a newline starts a word
    assert w.last_punct.tolist() == [-1, -1, -1, -1, 3, 3, 3, 6, 6, 8, 8, 8, 8, 12, 12]
    assert w.prev_same.tolist() == [-1] * 10 + [0, 1, -1, 11, -1]
    assert w.open_bracket.tolist() == [-1] * 7 + [6, 6, -1, -1, -1, -1, 12, 12]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, len(TOKENS) - 1), min_size=1, max_size=40), min_size=1, max_size=4))
def test_batched_features_equal_per_window_scans(rows):
    """The vectorised batch features agree with a plain per-position scan."""
    n = min(len(r) for r in rows)
    ids = np.array([r[:n] for r in rows])
    feats = window_features(ids, VOCAB)
    assert set(feats) == set(FEATURE_NAMES)
    for b in range(ids.shape[0]):
        row = ids[b]
        for p in range(n):
            earlier = [k for k in range(p) if row[k] == row[p]]
            assert feats["prev_same"][b, p] == (earlier[-1] if earlier else -1)
            puncts = [k for k in range(p) if VOCAB.is_punct[row[k]]]
            assert feats["last_punct"][b, p] == (puncts[-1] if puncts else -1)
        assert feats["sent_id"][b, 0] == 0 and feats["word_id"][b, 0] == 0
        assert (np.diff(feats["sent_id"][b]) >= 0).all()


def test_string_ids_intern_equal_strings():
    vocab = Vocab(tokens=("a", "b", "a", "c"))
    assert vocab.string_ids.tolist() == [0, 1, 0, 2]


def test_token_classes_are_whole_words_and_kinds_of_punctuation():
    from attnc.window import Vocab, window_features

    tokens = ("Ġthe", "Ġthe", "ater", "ĠHe", "Ġran", ",", "Ġand", "Ġ3", "Ġtwo", "Ġis", '."', "Ċ", "ĠMia", "Ġtwo", "fold")
    vocab = Vocab(tokens=tokens)
    ids = np.arange(len(tokens))[None, :]
    f = {k: v[0] for k, v in window_features(ids, vocab).items()}

    def where(name):
        return [tokens[i] for i in np.flatnonzero(f[name])]

    assert where("is_det") == ["Ġthe"] and f["is_det"][0] and not f["is_det"][1]  # "the" + "ater" is no determiner
    assert where("is_pron") == ["ĠHe"] and where("is_conj") == ["Ġand"] and where("is_aux") == ["Ġis"]
    assert where("is_comma") == [","] and where("is_sent_punct") == ['."'] and where("is_newline") == ["Ċ"]
    assert where("is_cap") == ["ĠHe", "ĠMia"]
    assert where("is_number") == ["Ġ3", "Ġtwo"]  # the second "two" continues into "fold"
