"""Syntax window features: the window's one spaCy parse, aligned to the model's tokens (extra `attnc[spacy]`).

`w.pos[p]`, `w.tag[p]`, `w.dep[p]`, `w.lemma[p]`, `w.ent_type[p]` are the
labels of the spaCy token covering model token p (the one holding p's first
non-space character; a model token that covers two spaCy tokens, such as
`."`, takes the first), and `w.dep_head[p]` is the position of the first
model token of that spaCy token's syntactic head (a root's head is itself,
so a root word points to its own first token). A model token of whitespace
only (a space or newline token, which spaCy does not give a word) has the
neutral values: labels "" and dep_head -1.

The parse is attnc.dsl.spacy_support.parse(text), the same cached parse that
paper-form programs get from `nlp(sentence)`: one parse per window text per
process, shared by every program and both forms. Nothing here runs unless a
program reads one of these features (window_features never parses).

Kernels read labels as integer codes (`label_code`): a 53-bit hash of the
string, "" is 0; equal strings have equal codes, and two different strings
that would share a code raise an error instead of comparing equal.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from attnc.window import token_offsets

#: String features: the spaCy token attribute each one reads.
LABEL_FEATURES = {"pos": "pos_", "tag": "tag_", "dep": "dep_", "lemma": "lemma_", "ent_type": "ent_type_"}
#: Every syntax feature a program can read as `w.<name>[p]`.
SYNTAX_FEATURE_NAMES = (*LABEL_FEATURES, "dep_head")
NO_LABEL, NO_HEAD = "", -1

_CODE_BITS = 53
_CODES: dict[int, str] = {0: ""}
_CODES_LOCK = threading.Lock()


def label_code(label: str) -> int:
    """The integer code of a label string (stable across processes); "" is 0.

    Raises:
        RuntimeError: another string already has this code (never silently equal).
    """
    if not label:
        return 0
    digest = hashlib.blake2b(label.encode("utf-8"), digest_size=8, person=b"attnc-label").digest()
    code = (int.from_bytes(digest, "little") & ((1 << _CODE_BITS) - 1)) or 1
    with _CODES_LOCK:
        known = _CODES.setdefault(code, label)
    if known != label:
        raise RuntimeError(f"label code collision between {known!r} and {label!r}; please report this")
    return code


@dataclass(frozen=True)
class WindowSyntax:
    """One window's syntax features: labels per position (tuples of str) and dep_head (read-only int64)."""

    labels: Mapping[str, tuple[str, ...]]
    dep_head: np.ndarray

    def feature(self, name: str):
        return self.dep_head if name == "dep_head" else self.labels[name]

    def codes(self, name: str) -> np.ndarray:
        """int64 [n]: label codes (`label_code`) for a label feature, dep_head itself for dep_head."""
        if name == "dep_head":
            return self.dep_head
        return np.array([label_code(label) for label in self.labels[name]], dtype=np.int64)


def align(text: str, offsets: Sequence[tuple[int, int]], doc) -> list[int]:
    """For each model token, the index of the spaCy token holding its first non-space character, or -1."""
    owner = np.full(len(text) + 1, -1, dtype=np.int64)
    for token in doc:
        owner[token.idx: token.idx + len(token.text)] = token.i
    covering = []
    for start, end in offsets:
        start, end = min(start, len(text)), min(end, len(text))
        first = next((c for c in range(start, end) if not text[c].isspace()), None)
        covering.append(int(owner[first]) if first is not None else -1)
    return covering


@lru_cache(maxsize=4096)
def _window_syntax(vocab, ids_bytes: bytes) -> WindowSyntax:
    from attnc.dsl import spacy_support

    ids = np.frombuffer(ids_bytes, dtype=np.int64)
    text = vocab.decode(ids)
    doc = spacy_support.parse(text)
    offsets = token_offsets(ids, vocab)
    covering = align(text, offsets, doc)
    tokens = list(doc)
    first_model_token = {}
    for position, index in enumerate(covering):
        if index >= 0:
            first_model_token.setdefault(index, position)
    labels = {name: tuple(getattr(tokens[i], attribute) if i >= 0 else NO_LABEL for i in covering)
              for name, attribute in LABEL_FEATURES.items()}
    heads = np.array([first_model_token.get(tokens[i].head.i, NO_HEAD) if i >= 0 else NO_HEAD for i in covering],
                     dtype=np.int64)
    heads.setflags(write=False)
    return WindowSyntax(labels, heads)


def window_syntax(ids: Sequence[int], vocab) -> WindowSyntax:
    """The syntax features of one window (cached per vocabulary and ids; the parse is cached by text).

    Raises:
        GuardError: the spaCy extra is not installed (its message names `pip install 'attnc[spacy]'`).
    """
    row = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
    return _window_syntax(vocab, row.tobytes())


def syntax_features(ids: np.ndarray, vocab, names: Sequence[str]) -> dict[str, np.ndarray]:
    """name -> int64 [B, n] for the syntax features in `names` (codes for labels), for a batch of windows."""
    ids = np.asarray(ids, dtype=np.int64)
    wanted = [name for name in names if name in SYNTAX_FEATURE_NAMES]
    out = {name: np.empty(ids.shape, dtype=np.int64) for name in wanted}
    for b in range(ids.shape[0] if wanted else 0):
        parsed = window_syntax(ids[b], vocab)
        for name in wanted:
            out[name][b] = parsed.codes(name)
    return out


def with_syntax_features(features: Mapping[str, np.ndarray], ids: np.ndarray, vocab,
                         names: Sequence[str]) -> dict[str, np.ndarray]:
    """`features` plus the syntax features in `names` it lacks (parsed only when some are missing)."""
    missing = [name for name in names if name in SYNTAX_FEATURE_NAMES and name not in features]
    if not missing:
        return dict(features)
    return {**features, **syntax_features(ids, vocab, missing)}
