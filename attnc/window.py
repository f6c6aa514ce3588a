"""What a program may read: a window of token ids, its token strings, its text,
and per-position features derived from the tokenizer's vocabulary.

This module is the single definition of those inputs. The reference
interpreter, every compiled backend and the runtime all build their inputs
here, so a feature means the same thing everywhere.

Per-vocabulary facts (is this token punctuation? does it start a word?) are
computed once per tokenizer into integer/boolean tables (`Vocab`); per-window
features that need a scan over positions (`sent_id`, `prev_same`, ...) are
computed in NumPy for a whole batch of windows at once (`window_features`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Sequence

import numpy as np

#: Markers byte-level and sentencepiece tokenizers put in front of a token that
#: follows a space (GPT-2/Llama-3/SmolLM use "Ġ", sentencepiece uses "▁").
SPACE_MARKERS = ("Ġ", "▁", " ")
#: Markers for newlines in byte-level vocabularies ("Ċ" is "\n").
NEWLINE_MARKERS = ("Ċ", "\n")
SENTENCE_END_CHARS = ".!?"
OPEN_BRACKETS = "([{"
CLOSE_BRACKETS = ")]}"
QUOTES = "\"“”"

#: Token classes: closed-class English words (lower case, whole words only), each a
#: boolean window feature `w.<class>[p]` true where position p is such a word.
WORD_CLASSES = {
    "is_det": frozenset("a an the this that these those my your his her its our their some any no every each "
                        "all both either neither another such".split()),
    "is_pron": frozenset("i me you he him she her it we us they them myself yourself himself herself itself "
                         "ourselves themselves who whom whose what which mine yours hers ours theirs someone "
                         "something everyone everything anyone anything nobody nothing somebody everybody".split()),
    "is_prep": frozenset("in on at to of for with from by about into onto over under after before through "
                         "between behind near around up down out off across along inside outside without toward "
                         "towards upon past since until like among beside against during".split()),
    "is_conj": frozenset("and or but so because if when while although though than as then yet nor unless "
                         "whether until once".split()),
    "is_aux": frozenset("is am are was were be been being have has had do does did will would can could shall "
                        "should may might must".split()),
}
#: Number words `w.is_number` counts beside digits.
NUMBER_WORDS = frozenset("zero one two three four five six seven eight nine ten eleven twelve twenty thirty "
                         "forty fifty hundred thousand first second third".split())
COMMA_CHARS = ",;:"
QUOTE_CHARS = "\"'“”‘’"

#: Names of the per-position features a program can read as `w.<name>[p]`.
FEATURE_NAMES = (
    "ids",
    "word_start",
    "is_punct",
    "word_id",
    "sent_start",
    "sent_id",
    "last_punct",
    "prev_same",
    "open_bracket",
    # token classes (defined once here; see WORD_CLASSES)
    *WORD_CLASSES,
    "is_sent_punct",
    "is_comma",
    "is_quote",
    "is_newline",
    "is_cap",
    "is_number",
)


def _strip_markers(token: str) -> str:
    for marker in SPACE_MARKERS:
        if token.startswith(marker):
            return token[len(marker):]
    return token


def _is_punctuation(text: str) -> bool:
    return bool(text) and all(unicodedata.category(c)[0] in "PS" for c in text)


SPECIAL_TOKEN_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _special_token_roles(tokenizer) -> tuple[tuple[str, int], ...]:
    roles = []
    for role in SPECIAL_TOKEN_ROLES:
        token_id = getattr(tokenizer, role + "_id", None)
        if isinstance(token_id, int):
            roles.append((role, token_id))
    return tuple(roles)


def _word_spans_of(tokenizer) -> Callable[[str], dict[int, tuple[int, int]]] | None:
    """The pre-tokenizer's words of a text, from a fast tokenizer's backend (None for slow tokenizers).

    Only the words' character spans are used (attnc/dsl/tokenizer_adapter.py
    maps the window's own tokens onto them by their offsets): the window is
    never re-tokenized.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None

    def word_spans(text: str) -> dict[int, tuple[int, int]]:
        encoding = backend.encode(text, add_special_tokens=False)
        spans: dict[int, tuple[int, int]] = {}
        for word, (start, end) in zip(encoding.word_ids, encoding.offsets):
            if word is not None:
                low, high = spans.get(word, (start, end))
                spans[word] = (min(low, start), max(high, end))
        return spans
    return word_spans


def _display_decode(tokens: Sequence[str]) -> str:
    """Readable text from token strings when no tokenizer is at hand (tests)."""
    out = "".join(tokens)
    for marker in SPACE_MARKERS:
        out = out.replace(marker, " ")
    for marker in NEWLINE_MARKERS:
        out = out.replace(marker, "\n")
    return out


@dataclass(frozen=True, eq=False)
class Vocab:
    """A tokenizer's vocabulary as tables indexed by token id.

    Args:
        tokens: token string of every id, as `convert_ids_to_tokens` gives it.
        special_ids: ids of special tokens (BOS, EOS, padding, ...).
        decoder: ids -> text; defaults to joining token strings.
        name: the tokenizer's name, recorded in artifacts.
    """

    tokens: tuple[str, ...]
    special_ids: frozenset[int] = frozenset()
    decoder: Callable[[Sequence[int]], str] | None = field(default=None, repr=False)
    name: str = "vocab"
    #: (role, id) of the tokenizer's named special tokens ("bos_token", "eos_token",
    #: "pad_token", ...); a role it does not have is absent.
    special_tokens: tuple[tuple[str, int], ...] = ()
    #: text -> {word index: (start, end) characters}, the words of the tokenizer's own
    #: pre-tokenizer (what a fast tokenizer's `word_ids()` numbers); None without a tokenizer.
    word_spans: Callable[[str], dict[int, tuple[int, int]]] | None = field(default=None, repr=False)

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "Vocab":
        """Build the tables from a Hugging Face tokenizer (runs once per tokenizer)."""
        size = len(tokenizer)
        tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
        tokens = tuple(t if t is not None else "" for t in tokens)
        return cls(
            tokens=tokens,
            special_ids=frozenset(int(i) for i in tokenizer.all_special_ids),
            decoder=lambda ids: tokenizer.decode(list(ids), clean_up_tokenization_spaces=False),
            name=getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__,
            special_tokens=_special_token_roles(tokenizer),
            word_spans=_word_spans_of(tokenizer),
        )

    @property
    def size(self) -> int:
        return len(self.tokens)

    def decode(self, ids: Sequence[int]) -> str:
        if self.decoder is not None:
            return self.decoder([int(i) for i in ids])
        return _display_decode([self.tokens[int(i)] for i in ids])

    @cached_property
    def token_index(self) -> dict[str, int]:
        """Token string -> id (`convert_tokens_to_ids`, `get_vocab`); the first id of a repeated string."""
        index: dict[str, int] = {}
        for i, token in enumerate(self.tokens):
            index.setdefault(token, i)
        return index

    @cached_property
    def string_ids(self) -> np.ndarray:
        """Interned id of each token's string: equal strings <=> equal values."""
        interned: dict[str, int] = {}
        return np.array([interned.setdefault(t, len(interned)) for t in self.tokens], dtype=np.int64)

    @cached_property
    def is_punct(self) -> np.ndarray:
        return np.array([_is_punctuation(_strip_markers(t)) for t in self.tokens], dtype=bool)

    @cached_property
    def has_space_marker(self) -> np.ndarray:
        return np.array(
            [t.startswith(SPACE_MARKERS) or t.startswith(NEWLINE_MARKERS) for t in self.tokens],
            dtype=bool,
        )

    @cached_property
    def has_newline(self) -> np.ndarray:
        return np.array([any(m in t for m in NEWLINE_MARKERS) for t in self.tokens], dtype=bool)

    @cached_property
    def ends_sentence(self) -> np.ndarray:
        def ends(t: str) -> bool:
            core = _strip_markers(t).rstrip("\"'”’)")
            return core.endswith(tuple(SENTENCE_END_CHARS))

        return np.array([ends(t) for t in self.tokens], dtype=bool) | self.has_newline

    @cached_property
    def token_classes(self) -> dict[str, np.ndarray]:
        """Per token id, bool tables of the token classes (before the whole-word check of
        `window_features`): WORD_CLASSES, sentence-end punctuation, comma-like, quote,
        newline, capitalised, number word, and `digits` (a token of digits only)."""
        cores = [_strip_markers(t) for t in self.tokens]
        lowered = [c.lower() for c in cores]
        tables = {name: np.array([c in words for c in lowered], dtype=bool) for name, words in WORD_CLASSES.items()}
        tables["is_sent_punct"] = np.array([bool(c) and _is_punctuation(c) and c.rstrip(QUOTE_CHARS + ")").endswith(
            tuple(SENTENCE_END_CHARS)) for c in cores], dtype=bool)
        tables["is_comma"] = np.array([bool(c) and all(ch in COMMA_CHARS for ch in c) for c in cores], dtype=bool)
        tables["is_quote"] = np.array([bool(c) and all(ch in QUOTE_CHARS for ch in c) for c in cores], dtype=bool)
        tables["is_newline"] = self.has_newline
        # ASCII capitals only: byte-level vocabularies spell newlines and non-ASCII bytes as
        # letters such as "Ċ" or "Ã", which are not capitalised words
        tables["is_cap"] = np.array([c[:1].isascii() and c[:1].isupper() for c in cores], dtype=bool)
        tables["is_number"] = np.array([c in NUMBER_WORDS for c in lowered], dtype=bool)
        tables["digits"] = np.array([c.isdigit() for c in cores], dtype=bool)  # digits: any token, word or not
        return tables

    @cached_property
    def bracket_kind(self) -> np.ndarray:
        """+1 opening bracket, -1 closing bracket, 2 quote (toggles), 0 other."""
        kinds = np.zeros(self.size, dtype=np.int8)
        for i, t in enumerate(self.tokens):
            core = _strip_markers(t)
            if core in OPEN_BRACKETS or core in ("“",):
                kinds[i] = 1
            elif core in CLOSE_BRACKETS or core in ("”",):
                kinds[i] = -1
            elif core == '"':
                kinds[i] = 2
        return kinds


def token_offsets(ids: Sequence[int], vocab: Vocab) -> list[tuple[int, int]]:
    """(start, end) of each token in the window's decoded text: `end = len(decode(ids[:i+1]))`.

    The convention of a byte-level fast tokenizer without offset trimming (the
    tokenizer adapter's `offset_mapping`, the syntax features' alignment).
    """
    ids = [int(i) for i in ids]
    ends = [len(vocab.decode(ids[: i + 1])) for i in range(len(ids))]
    starts = [0] + ends[:-1]
    return [(min(s, e), e) for s, e in zip(starts, ends)]


def window_features(ids: np.ndarray, vocab: Vocab) -> dict[str, np.ndarray]:
    """Per-position features for a batch of windows.

    Args:
        ids: int array [B, n] of token ids.
        vocab: the tokenizer's tables.

    Returns:
        name -> int64/bool array [B, n], for every name in FEATURE_NAMES:
        word_start (starts a word), is_punct, word_id (index of the word),
        sent_start (first token of a sentence), sent_id (index of the sentence),
        last_punct (latest position < p that is punctuation, -1 if none),
        prev_same (latest position < p with the same id, -1 if none),
        open_bracket (position of the innermost bracket or quote still open
        before p, -1 if none); the token classes: is_det, is_pron, is_prep,
        is_conj, is_aux (a whole word of that closed class: a word-start token
        the next token does not continue), is_sent_punct (. ! ?), is_comma
        (, ; :), is_quote, is_newline, is_cap (a word starting with a capital
        letter), is_number (digits or a number word).
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 2:
        raise ValueError(f"ids must be [B, n], got shape {ids.shape}")
    batch, n = ids.shape
    positions = np.broadcast_to(np.arange(n), (batch, n))
    is_punct = vocab.is_punct[ids]
    first = positions == 0
    prev_breaks = np.zeros_like(is_punct)
    prev_breaks[:, 1:] = is_punct[:, :-1] | vocab.has_newline[ids[:, :-1]]
    word_start = first | vocab.has_space_marker[ids] | is_punct | prev_breaks
    sent_start = first.copy()
    sent_start[:, 1:] |= vocab.ends_sentence[ids[:, :-1]]

    punct_pos = np.where(is_punct, positions, -1)
    last_punct = np.full((batch, n), -1, dtype=np.int64)
    if n > 1:
        last_punct[:, 1:] = np.maximum.accumulate(punct_pos[:, :-1], axis=1)

    whole_word = word_start.copy()
    whole_word[:, :-1] &= word_start[:, 1:]
    classes = vocab.token_classes
    by_class = {name: classes[name][ids] & whole_word for name in WORD_CLASSES}
    by_class["is_number"] = (classes["is_number"][ids] & whole_word) | classes["digits"][ids]
    by_class["is_cap"] = classes["is_cap"][ids] & word_start
    for name in ("is_sent_punct", "is_comma", "is_quote", "is_newline"):
        by_class[name] = classes[name][ids]
    return {
        **by_class,
        "ids": ids,
        "word_start": word_start,
        "is_punct": is_punct,
        "word_id": np.cumsum(word_start, axis=1) - 1,
        "sent_start": sent_start,
        "sent_id": np.cumsum(sent_start, axis=1) - 1,
        "last_punct": last_punct,
        "prev_same": _previous_occurrence(ids),
        "open_bracket": _open_brackets(ids, vocab.bracket_kind),
    }


def _previous_occurrence(ids: np.ndarray) -> np.ndarray:
    """prev_same[b, p] = latest k < p with ids[b, k] == ids[b, p], else -1."""
    batch, n = ids.shape
    order = np.lexsort((np.broadcast_to(np.arange(n), (batch, n)), ids), axis=1)
    sorted_ids = np.take_along_axis(ids, order, axis=1)
    same_as_before = np.zeros((batch, n), dtype=bool)
    same_as_before[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
    prev_in_sorted = np.full((batch, n), -1, dtype=np.int64)
    prev_in_sorted[:, 1:] = order[:, :-1]
    prev = np.where(same_as_before, prev_in_sorted, -1)
    out = np.empty_like(prev)
    np.put_along_axis(out, order, prev, axis=1)
    return out


def _open_brackets(ids: np.ndarray, kinds_table: np.ndarray) -> np.ndarray:
    kinds = kinds_table[ids]
    batch, n = ids.shape
    out = np.full((batch, n), -1, dtype=np.int64)
    for b in np.flatnonzero(kinds.any(axis=1)):
        stack: list[tuple[int, int]] = []  # (position, kind)
        for p in range(n):
            out[b, p] = stack[-1][0] if stack else -1
            kind = kinds[b, p]
            if kind == 1:
                stack.append((p, 1))
            elif kind == -1:
                if stack and stack[-1][1] == 1:
                    stack.pop()
            elif kind == 2:
                if stack and stack[-1][1] == 2:
                    stack.pop()
                else:
                    stack.append((p, 2))
    return out


class Window:
    """One window as a program sees it (`w` in the native form).

    Attributes: `n`, `ids`, `tok` (token strings), `text` (decoded), every
    feature in FEATURE_NAMES as a length-n array indexed by position, and the
    syntax features (attnc/window_syntax.py), parsed on first read only.
    """

    __slots__ = ("n", "tok", "text", "vocab", "_features")

    def __init__(self, ids: Sequence[int], vocab: Vocab, features: dict[str, np.ndarray] | None = None):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self.vocab = vocab
        self.n = int(ids.shape[0])
        self.tok = [vocab.tokens[int(i)] for i in ids]
        self.text = vocab.decode(ids)
        if features is None:
            features = {k: v[0] for k, v in window_features(ids[None, :], vocab).items()}
        self._features = features

    def __getattr__(self, name: str):
        features = object.__getattribute__(self, "_features")
        if name in features:
            return features[name]
        from attnc.window_syntax import SYNTAX_FEATURE_NAMES, window_syntax

        if name in SYNTAX_FEATURE_NAMES:
            return window_syntax(features["ids"], self.vocab).feature(name)
        raise AttributeError(f"Window has no feature {name!r}; features: "
                             f"{', '.join(FEATURE_NAMES + SYNTAX_FEATURE_NAMES)}")

    def __repr__(self) -> str:
        return f"Window(n={self.n}, text={self.text[:40]!r})"
