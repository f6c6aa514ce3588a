"""The paper form's `tokenizer`, bound to one window's own token ids.

A program written against Hugging Face tokenizers (`tokenizer([sentence],
return_tensors="pt").input_ids`, `convert_ids_to_tokens`, `enc.tokens()`,
`offset_mapping`, ...) runs against the window: nothing is re-tokenized, the
ids are exactly the window's, and offsets are measured in the window's
decoded text (`len(decode(ids[:i]))`, the convention of a fast byte-level
tokenizer without offset trimming).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from attnc.dsl.errors import GuardError
from attnc.window import SPECIAL_TOKEN_ROLES, token_offsets


class CharSpan(NamedTuple):
    """What `token_to_chars` returns, as in transformers."""

    start: int
    end: int


def _no_charge(elements: int, what: str = "") -> None:
    return None


class TokenizerAdapter:
    """Supported: calling it on the window's sentence, `convert_ids_to_tokens`,
    `convert_tokens_to_ids`, `decode`, `batch_decode`, `tokenize`, `encode`,
    `all_special_ids`, `all_special_tokens`, `get_vocab()`/`.vocab`,
    `vocab_size`, `len(tokenizer)` and the special-token roles
    (`bos_token`/`bos_token_id`, ... None where the tokenizer has none)."""

    __slots__ = ("_window", "_charge", "_offsets", "_word_ids")

    def __init__(self, window, charge: Callable[[int, str], None] = _no_charge):
        self._window = window
        self._charge = charge
        self._offsets: list[tuple[int, int]] | None = None
        self._word_ids: list[int | None] | None = None

    def __getattr__(self, name: str):
        role = name[:-3] if name.endswith("_id") else name
        if role in SPECIAL_TOKEN_ROLES:
            token_id = dict(self._window.vocab.special_tokens).get(role)
            if token_id is None or name.endswith("_id"):
                return token_id
            return self._window.vocab.tokens[token_id]
        raise AttributeError(name)

    def __len__(self) -> int:
        return len(self._window.vocab.tokens)

    def _check_text(self, text: Any) -> bool:
        """Refuse any text but the window's; returns whether it came as a batch (`[sentence]`)."""
        batched = isinstance(text, (list, tuple))
        if batched and len(text) == 1:
            text = text[0]
        if not isinstance(text, str) or text != self._window.text:
            raise GuardError("the tokenizer adapter only tokenizes the window's own sentence "
                             "(pass `sentence` unchanged)")
        return batched

    def __call__(self, text, return_tensors=None, **options) -> "Encoding":
        batched = self._check_text(text)
        return Encoding(self, batched=batched, tensors=return_tensors is not None)

    def offsets(self) -> list[tuple[int, int]]:
        """(start, end) of each token in the window's decoded text; computed once per window."""
        if self._offsets is None:
            self._charge(self._window.n * self._window.n, "offset_mapping")
            self._offsets = token_offsets(self._window.ids, self._window.vocab)
        return self._offsets

    def word_ids(self) -> list[int | None]:
        """Word index of each token, computed once per window.

        With a real fast tokenizer (Vocab.word_spans): the index of its
        pre-tokenizer's word that overlaps the token's characters most (None
        if none does), as transformers' `word_ids()` numbers them. Without one (the
        sample vocabularies): attnc's word rule, `w.word_id`.
        """
        if self._word_ids is None:
            spans = self._window.vocab.word_spans
            if spans is None:
                self._word_ids = [int(i) for i in self._window.word_id]
            else:
                words = sorted(spans(self._window.text).items(), key=lambda item: item[1])
                self._charge(len(words) * self._window.n, "word_ids")
                found: list[int | None] = []
                for start, end in self.offsets():
                    overlaps = [(min(end, e) - max(start, s), -w) for w, (s, e) in words if min(end, e) > max(start, s)]
                    found.append(-max(overlaps)[1] if overlaps else None)
                self._word_ids = found
        return self._word_ids

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        tokens = self._window.vocab.tokens
        if isinstance(ids, (int, np.integer)):
            return tokens[int(ids)]
        flat = np.asarray(ids).reshape(-1)
        if flat.dtype.kind not in "iu" or (flat.size and (flat.min() < 0 or flat.max() >= len(tokens))):
            raise GuardError("convert_ids_to_tokens needs token ids of this tokenizer")
        special = self._window.vocab.special_ids
        return [tokens[int(i)] for i in flat if not (skip_special_tokens and int(i) in special)]

    def convert_tokens_to_ids(self, tokens):
        """A token string's id (the unknown token's id, or None, for a string not in the vocabulary)."""
        index = self._window.vocab.token_index
        unknown = self.unk_token_id
        if isinstance(tokens, str):
            return index.get(tokens, unknown)
        tokens = list(tokens)
        self._charge(len(tokens), "convert_tokens_to_ids")
        if not all(isinstance(t, str) for t in tokens):
            raise GuardError("convert_tokens_to_ids needs token strings")
        return [index.get(t, unknown) for t in tokens]

    def decode(self, ids, skip_special_tokens: bool = False, **options) -> str:
        flat = [int(i) for i in np.asarray(ids).reshape(-1)]
        if not all(0 <= i < len(self._window.vocab.tokens) for i in flat):
            raise GuardError("decode needs token ids of this tokenizer")
        self._charge(len(flat), "decode")
        if skip_special_tokens:
            flat = [i for i in flat if i not in self._window.vocab.special_ids]
        return self._window.vocab.decode(flat)

    def batch_decode(self, sequences, skip_special_tokens: bool = False, **options) -> list[str]:
        rows = sequences.tolist() if isinstance(sequences, np.ndarray) else list(sequences)
        return [self.decode([row] if isinstance(row, (int, np.integer)) else row, skip_special_tokens)
                for row in rows]

    def tokenize(self, text, **options) -> list[str]:
        self._check_text(text)
        return list(self._window.tok)

    def encode(self, text, return_tensors=None, **options):
        """The window's ids: a list, or a [1, n] array with `return_tensors` (as transformers does)."""
        self._check_text(text)
        if return_tensors is not None:
            return np.asarray(self._window.ids, dtype=np.int64).reshape(1, -1).copy()
        return [int(i) for i in self._window.ids]

    def get_vocab(self) -> dict[str, int]:
        self._charge(len(self._window.vocab.tokens), "get_vocab")
        return dict(self._window.vocab.token_index)

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    @property
    def vocab_size(self) -> int:
        return len(self._window.vocab.tokens)

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(self._window.vocab.special_ids)

    @property
    def all_special_tokens(self) -> list[str]:
        return [self._window.vocab.tokens[i] for i in self.all_special_ids]


class Encoding:
    """What calling the adapter returns, shaped as Hugging Face would return it.

    With `return_tensors=...`: `.input_ids` is a [1, n] int64 array (and
    `.offset_mapping` [1, n, 2]). Without: a list of ids for
    `tokenizer(sentence)`, a list holding that list for `tokenizer([sentence])`.
    """

    __slots__ = ("_adapter", "_window", "_batched", "_tensors")

    def __init__(self, adapter: TokenizerAdapter, batched: bool = True, tensors: bool = True):
        self._adapter = adapter
        self._window = adapter._window
        self._batched = batched
        self._tensors = tensors

    def _shaped(self, values: np.ndarray):
        if self._tensors:
            return values.reshape((1,) + values.shape).copy()
        flat = values.tolist() if values.ndim == 1 else [tuple(v) for v in values.tolist()]
        return [flat] if self._batched else flat

    @property
    def input_ids(self):
        return self._shaped(np.asarray(self._window.ids, dtype=np.int64))

    @property
    def attention_mask(self):
        return self._shaped(np.ones(self._window.n, dtype=np.int64))

    @property
    def offset_mapping(self):
        return self._shaped(np.array(self._adapter.offsets(), dtype=np.int64).reshape(-1, 2))

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return list(self._adapter.word_ids())

    words = word_ids

    def tokens(self, batch_index: int = 0) -> list[str]:
        return list(self._window.tok)

    def _position(self, batch_or_token_index: int, token_index: int | None) -> int:
        position = batch_or_token_index if token_index is None else token_index
        if token_index is not None and batch_or_token_index != 0:
            raise IndexError("the encoding holds one sequence (batch index 0)")
        return range(self._window.n)[position]

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan:
        return CharSpan(*self._adapter.offsets()[self._position(batch_or_token_index, token_index)])

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        return self._adapter.word_ids()[self._position(batch_or_token_index, token_index)]

    def keys(self) -> list[str]:
        return ["input_ids", "attention_mask"]

    def __getitem__(self, key):
        if key in ("input_ids", "attention_mask", "offset_mapping"):
            return getattr(self, key)
        raise GuardError(f"encoding has no item {key!r}; use 'input_ids', 'attention_mask' or 'offset_mapping'")
