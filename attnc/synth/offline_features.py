"""Pairwise features of (query q, key k) for the offline synthesizer.

Each `PairFeature` is defined once, twice over: as NumPy code that computes
its value for a whole batch of windows ([W, n, n], fitted on), and as the
DSL expression the emitted program writes for one (q, k) pair. The two must
agree exactly (tests/test_synth_offline.py checks them against the compiler),
so a fitted weight means the same thing in the fit and in the program.

Beside the positional and structural features, the token classes of
attnc/window.py give key-class features (``key_det``: the key is a
determiner, ...) and query x key class interactions (``pron_to_cap``: a
pronoun query looks at a capitalised word): named classes, defined once,
instead of ad-hoc token sets.

Token key biases (a weight for keys whose token string is in a small set)
are not listed here: they are learned per vocabulary entry and emitted as
``w.tok[k] in {...}`` terms (see offline_fit.py and offline_emit.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

Grid = tuple[np.ndarray, np.ndarray]  # (q [1, n, 1], k [1, 1, n]) position grids


@dataclass(frozen=True)
class PairFeature:
    """One (q, k) feature: its name, NumPy batch definition and DSL expression.

    Attributes:
        name: short identifier (also used in reports).
        dsl: expression over q, k, w giving the feature for one pair.
        compute: (window features [W, n] by name, (q, k) grids) -> float [W, n, n].
        meaning: words for the program's docstring.
    """

    name: str
    dsl: str
    compute: Callable[[Mapping[str, np.ndarray], Grid], np.ndarray]
    meaning: str


def _at_query(values: np.ndarray) -> np.ndarray:
    return values[:, :, None]


def _at_key(values: np.ndarray) -> np.ndarray:
    return values[:, None, :]


def _distance(g: Grid) -> np.ndarray:
    q, k = g
    return np.maximum(q - k, 0)


def _induction(f: Mapping[str, np.ndarray], g: Grid) -> np.ndarray:
    ids = f["ids"]
    before = np.concatenate([ids[:, -1:], ids[:, :-1]], axis=1)  # ids[k - 1], wrapping like Python at k = 0
    _, k = g
    return (k >= 1) & (_at_key(before) == _at_query(ids))


FEATURES: tuple[PairFeature, ...] = (
    PairFeature("sink", "(k == 0)", lambda f, g: g[1] == 0, "first token of the window (attention sink)"),
    PairFeature("self", "(k == q)", lambda f, g: g[1] == g[0], "the query token itself"),
    PairFeature("prev1", "(k == q - 1)", lambda f, g: g[1] == g[0] - 1, "previous token"),
    PairFeature("prev2", "(k == q - 2)", lambda f, g: g[1] == g[0] - 2, "two tokens back"),
    PairFeature("prev3", "(k == q - 3)", lambda f, g: g[1] == g[0] - 3, "three tokens back"),
    PairFeature("prev4", "(k == q - 4)", lambda f, g: g[1] == g[0] - 4, "four tokens back"),
    PairFeature("log_distance", "np.log(max(q - k, 0) + 1)", lambda f, g: np.log(_distance(g) + 1.0),
                "log of the distance back"),
    PairFeature("distance", "max(q - k, 0)", lambda f, g: _distance(g).astype(np.float64), "distance back"),
    PairFeature("log_key_position", "np.log(k + 1)", lambda f, g: np.log(g[1] + 1.0), "log of the key's position"),
    PairFeature("same_sentence", "(w.sent_id[k] == w.sent_id[q])",
                lambda f, g: _at_key(f["sent_id"]) == _at_query(f["sent_id"]), "key in the query's sentence"),
    PairFeature("previous_sentence", "(w.sent_id[k] == w.sent_id[q] - 1)",
                lambda f, g: _at_key(f["sent_id"]) == _at_query(f["sent_id"]) - 1, "key in the previous sentence"),
    PairFeature("sentence_start", "w.sent_start[k]", lambda f, g: _at_key(f["sent_start"]) & (g[1] >= 0),
                "key starts a sentence"),
    PairFeature("sentence_beginning", "(w.sent_start[k] and w.sent_id[k] == w.sent_id[q])",
                lambda f, g: _at_key(f["sent_start"]) & (_at_key(f["sent_id"]) == _at_query(f["sent_id"])),
                "first token of the query's sentence"),
    PairFeature("word_start", "w.word_start[k]", lambda f, g: _at_key(f["word_start"]) & (g[1] >= 0),
                "key starts a word"),
    PairFeature("same_word", "(w.word_id[k] == w.word_id[q])",
                lambda f, g: _at_key(f["word_id"]) == _at_query(f["word_id"]), "key in the query's word"),
    PairFeature("previous_word_start", "(w.word_start[k] and w.word_id[k] == w.word_id[q] - 1)",
                lambda f, g: _at_key(f["word_start"]) & (_at_key(f["word_id"]) == _at_query(f["word_id"]) - 1),
                "first token of the previous word"),
    PairFeature("punctuation", "w.is_punct[k]", lambda f, g: _at_key(f["is_punct"]) & (g[1] >= 0),
                "key is punctuation"),
    PairFeature("last_punctuation", "(k == w.last_punct[q])", lambda f, g: g[1] == _at_query(f["last_punct"]),
                "latest punctuation before the query"),
    PairFeature("same_token", "(w.ids[k] == w.ids[q])", lambda f, g: _at_key(f["ids"]) == _at_query(f["ids"]),
                "earlier copies of the query token"),
    PairFeature("previous_copy", "(k == w.prev_same[q])", lambda f, g: g[1] == _at_query(f["prev_same"]),
                "latest earlier copy of the query token"),
    PairFeature("induction", "(k >= 1 and w.ids[k - 1] == w.ids[q])", _induction,
                "token after an earlier copy of the query token (induction)"),
    PairFeature("open_bracket", "(k == w.open_bracket[q])", lambda f, g: g[1] == _at_query(f["open_bracket"]),
                "innermost open bracket or quote"),
)

#: Token classes (attnc/window.py) in words, for docstrings.
CLASS_WORDS = {
    "is_det": "determiner", "is_pron": "pronoun", "is_prep": "preposition", "is_conj": "conjunction",
    "is_aux": "auxiliary verb", "is_sent_punct": "sentence-final punctuation", "is_comma": "comma-like punctuation",
    "is_quote": "quotation mark", "is_newline": "newline", "is_cap": "capitalised word", "is_number": "number",
    "is_punct": "punctuation",
}
#: Key classes a key-class feature exists for, and the query x key class interactions
#: ("which kind of token looks at which kind").
KEY_CLASSES = ("is_det", "is_pron", "is_prep", "is_conj", "is_aux", "is_sent_punct", "is_comma", "is_quote",
               "is_newline", "is_cap", "is_number")
QUERY_CLASSES = ("is_pron", "is_det", "is_prep", "is_aux", "is_conj", "is_punct")
INTERACTION_KEY_CLASSES = ("is_cap", "is_pron", "is_det", "is_prep", "is_aux", "is_conj", "is_sent_punct")


def _short(name: str) -> str:
    return name.removeprefix("is_")


def _key_class(name: str) -> PairFeature:
    return PairFeature(f"key_{_short(name)}", f"w.{name}[k]", lambda f, g: _at_key(f[name]) & (g[1] >= 0),
                       f"key is a {CLASS_WORDS[name]}")


def _class_pair(query: str, key: str) -> PairFeature:
    return PairFeature(f"{_short(query)}_to_{_short(key)}", f"(w.{query}[q] and w.{key}[k])",
                       lambda f, g: _at_query(f[query]) & _at_key(f[key]),
                       f"a {CLASS_WORDS[query]} query looks at a {CLASS_WORDS[key]}")


FEATURES = FEATURES + tuple(_key_class(c) for c in KEY_CLASSES) + tuple(
    _class_pair(q, k) for q in QUERY_CLASSES for k in INTERACTION_KEY_CLASSES)
#: The token-class features (key classes and query x key class pairs).
CLASS_FEATURES = frozenset(f.name for f in FEATURES[22:])

FEATURE_BY_NAME = {f.name: f for f in FEATURES}


def position_grid(n: int) -> Grid:
    """(q [1, n, 1], k [1, 1, n]) int64 position grids."""
    return np.arange(n)[None, :, None], np.arange(n)[None, None, :]


def feature_tensor(window_feats: Mapping[str, np.ndarray], names: tuple[str, ...] | None = None) -> np.ndarray:
    """All features for a batch of windows as float32 [W, n, n, F] (F in `names` order).

    Args:
        window_feats: `attnc.window.window_features(ids, vocab)`.
        names: feature names (default: every feature in FEATURES).
    """
    names = tuple(f.name for f in FEATURES) if names is None else names
    ids = window_feats["ids"]
    batch, n = ids.shape
    grid = position_grid(n)
    out = np.empty((batch, n, n, len(names)), dtype=np.float32)
    for i, name in enumerate(names):
        out[..., i] = np.broadcast_to(FEATURE_BY_NAME[name].compute(window_feats, grid), (batch, n, n))
    return out
