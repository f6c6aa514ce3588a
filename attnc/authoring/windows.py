"""Generated windows for property tests: hypothesis strategies and explicit edge cases.

A window is a list of token ids of one vocabulary. Random windows alone rarely
hit the inputs that break programs, so the strategy mixes window *classes*
(random ids, one id repeated, punctuation only, words with newlines, words
with brackets and quotes, the vocabulary's longest tokens), each with a length
log-uniform in 1..`max_len`: mostly short, sometimes up to 512 tokens. Every class
shrinks: hypothesis makes a failing window shorter and its ids smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from attnc.window import Vocab

#: Longest window generated (the default window of the study is 128 tokens).
MAX_WINDOW = 512
#: How many of the vocabulary's longest tokens the "long tokens" class draws from.
LONGEST_TOKENS = 16


@dataclass(frozen=True)
class VocabPools:
    """Token ids of one vocabulary grouped by what they exercise.

    Attributes:
        size: vocabulary size.
        readable: every id in [0, size), plain word tokens first, so that
            shrinking (toward the first entry) ends on readable tokens.
        words: ids of tokens that are neither punctuation, newline nor special.
        punct: punctuation/symbol-only tokens.
        newlines: tokens containing a newline.
        brackets: opening/closing brackets and quotes.
        longest: the longest token strings of the vocabulary.
    """

    size: int
    readable: tuple[int, ...]
    words: tuple[int, ...]
    punct: tuple[int, ...]
    newlines: tuple[int, ...]
    brackets: tuple[int, ...]
    longest: tuple[int, ...]

    @classmethod
    def from_vocab(cls, vocab: Vocab) -> "VocabPools":
        """Group `vocab`'s ids; empty groups fall back to every id (tiny vocabularies)."""
        ids = np.arange(vocab.size)
        special = np.isin(ids, sorted(vocab.special_ids))
        everything = tuple(int(i) for i in ids)

        def pool(mask: np.ndarray) -> tuple[int, ...]:
            chosen = tuple(int(i) for i in ids[mask])
            return chosen or everything

        lengths = np.array([len(t) for t in vocab.tokens])
        order = np.argsort(-lengths, kind="stable")
        longest = tuple(int(i) for i in order if not special[i])[:LONGEST_TOKENS]
        words = pool(~vocab.is_punct & ~vocab.has_newline & ~special)
        return cls(
            size=vocab.size,
            readable=words + tuple(sorted(set(everything) - set(words))),
            words=words,
            punct=pool(vocab.is_punct & ~vocab.has_newline & ~special),
            newlines=pool(vocab.has_newline & ~special),
            brackets=pool((vocab.bracket_kind != 0) & ~special),
            longest=longest or everything,
        )


def _lengths(max_len: int) -> st.SearchStrategy[int]:
    """Window lengths in 1..max_len, log-uniform: short windows (fast, easy to read) most of the time.

    A scale 2**b is drawn uniformly (b = 0..log2(max_len)), then a length up to
    it: the mean length is ~50 for max_len 512, yet every length can occur.
    """
    top = max(1, int(max_len)).bit_length()
    return st.integers(0, top - 1).flatmap(lambda b: st.integers(1, min(max_len, 2 ** b)))


def _ids_of_length(elements: st.SearchStrategy[int], max_len: int) -> st.SearchStrategy[list[int]]:
    return _lengths(max_len).flatmap(lambda n: st.lists(elements, min_size=n, max_size=n))


def window_strategy(pools: VocabPools, max_len: int = MAX_WINDOW) -> st.SearchStrategy[list[int]]:
    """Token-id windows of length 1..max_len mixing the window classes.

    The first class (any id) is what shrinking moves toward, so a shrunk
    counterexample is a short window of plain word tokens whenever one exists.
    """
    any_id = st.sampled_from(pools.readable)
    words = st.sampled_from(pools.words)
    return st.one_of(
        _ids_of_length(any_id, max_len),
        _lengths(max_len).flatmap(lambda n: any_id.map(lambda i: [i] * n)),
        _ids_of_length(st.sampled_from(pools.punct), max_len),
        _ids_of_length(st.one_of(words, st.sampled_from(pools.newlines)), max_len),
        _ids_of_length(st.one_of(words, st.sampled_from(pools.brackets)), max_len),
        _ids_of_length(st.sampled_from(pools.longest), max_len),
    )


def edge_case_windows(pools: VocabPools) -> dict[str, list[int]]:
    """Named windows every property run tries first, whatever hypothesis generates.

    One token, all-identical tokens, all punctuation, words around newlines,
    nested brackets and quotes, and the vocabulary's longest tokens.
    """
    word = pools.words[len(pools.words) // 2]
    other = pools.words[len(pools.words) // 3]
    newline = pools.newlines[0]
    return {
        "one token": [word],
        "all identical": [word] * 6,
        "all punctuation": [pools.punct[i % len(pools.punct)] for i in range(5)],
        "newlines": [word, newline, other, newline, newline, word],
        "brackets": [word, *pools.brackets[:4], other, *pools.brackets[:4][::-1], word],
        "longest tokens": [pools.longest[i % len(pools.longest)] for i in range(4)],
    }
