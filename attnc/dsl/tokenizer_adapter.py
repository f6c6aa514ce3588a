"""The paper form's `tokenizer`, bound to one window's own token ids.

A program written against Hugging Face tokenizers (`tokenizer([sentence],
return_tensors="pt").input_ids`, `convert_ids_to_tokens`, ...) runs against
the window: nothing is re-tokenized, the ids are exactly the window's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attnc.dsl.errors import GuardError


class TokenizerAdapter:
    """Supported: calling it on the window's sentence, `convert_ids_to_tokens`,
    `decode`, `tokenize`, `encode`, `all_special_ids`."""

    __slots__ = ("_window",)

    def __init__(self, window):
        self._window = window

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
        return Encoding(self._window, batched=batched, tensors=return_tensors is not None)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        tokens = self._window.vocab.tokens
        if isinstance(ids, (int, np.integer)):
            return tokens[int(ids)]
        flat = np.asarray(ids).reshape(-1)
        if flat.dtype.kind not in "iu" or (flat.size and (flat.min() < 0 or flat.max() >= len(tokens))):
            raise GuardError("convert_ids_to_tokens needs token ids of this tokenizer")
        special = self._window.vocab.special_ids
        return [tokens[int(i)] for i in flat if not (skip_special_tokens and int(i) in special)]

    def decode(self, ids, skip_special_tokens: bool = False, **options) -> str:
        flat = [int(i) for i in np.asarray(ids).reshape(-1)]
        if skip_special_tokens:
            flat = [i for i in flat if i not in self._window.vocab.special_ids]
        return self._window.vocab.decode(flat)

    def tokenize(self, text, **options) -> list[str]:
        self._check_text(text)
        return list(self._window.tok)

    def encode(self, text, **options) -> list[int]:
        self._check_text(text)
        return [int(i) for i in self._window.ids]

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(self._window.vocab.special_ids)


class Encoding:
    """What calling the adapter returns, shaped as Hugging Face would return it.

    With `return_tensors=...`: `.input_ids` is a [1, n] int64 array. Without:
    a list of ids for `tokenizer(sentence)`, a list holding that list for
    `tokenizer([sentence])`.
    """

    __slots__ = ("_window", "_batched", "_tensors")

    def __init__(self, window, batched: bool = True, tensors: bool = True):
        self._window = window
        self._batched = batched
        self._tensors = tensors

    def _shaped(self, values: np.ndarray):
        if self._tensors:
            return values.reshape(1, -1).copy()
        flat = [int(v) for v in values]
        return [flat] if self._batched else flat

    @property
    def input_ids(self):
        return self._shaped(np.asarray(self._window.ids, dtype=np.int64))

    @property
    def attention_mask(self):
        return self._shaped(np.ones(self._window.n, dtype=np.int64))

    def word_ids(self, batch_index: int = 0) -> list[int]:
        return [int(i) for i in self._window.word_id]

    def __getitem__(self, key):
        if key in ("input_ids", "attention_mask"):
            return getattr(self, key)
        raise GuardError(f"encoding has no item {key!r}; use 'input_ids' or 'attention_mask'")
