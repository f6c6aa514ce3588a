"""Probe windows: a small fixed vocabulary and batch every compiled program is run on.

Used at compile time, without JIT (CompiledProgram.probe_evaluate runs loop
kernels as plain Python), to (1) note programs that fail on a probe window,
(2) measure how many non-zeros a row has (the K of the sparse form), and (3)
fingerprint outputs so a library can report programs that compute the same
matrices (duplicates).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from attnc.window import Vocab

_PROBE_TOKENS = (
    "<|endoftext|>", "The", "Ġthe", "Ġcat", "Ġsat", "Ġon", "Ġmat", ".", ",", "Ġand", "Ġhe", "Ġshe", "ĠShe",
    "ĠHe", "ĠTom", "ĠMary", "Ġsaid", "Ġ\"", "\"", "(", ")", "Ġ(", "[", "]", "Ġdog", "s", "ing", "ed", "Ġran",
    "!", "?", "Ċ", "ĊĊ", "Ġ", "Ġit", "Ġwas", "Ġa", "Ġbig", "Ġred", "Ġball", "Ġ1", "2", "Ġ2023", ":", ";",
    "Ġlittle", "Ġgirl", "Ġwent", "Ġto", "Ġpark", "Ġher", "Ġhis", "Ġthey", "Ġ'", "'s", "-", "Ġun", "believ",
    "able", "ĠOnce", "Ġupon", "Ġtime", "Ġthere", "Ġlived",
)
PROBE_BATCH, PROBE_LENGTH = 6, 40
LONG_PROBE_LENGTH = 192


@lru_cache(maxsize=1)
def probe_vocab() -> Vocab:
    return Vocab(tokens=_PROBE_TOKENS, special_ids=frozenset({0}), name="attnc-probe")


@lru_cache(maxsize=1)
def probe_ids() -> np.ndarray:
    """int64 [PROBE_BATCH, PROBE_LENGTH]: random windows, one with repeats, one short-vocab."""
    rng = np.random.default_rng(20240601)
    ids = rng.integers(0, len(_PROBE_TOKENS), size=(PROBE_BATCH, PROBE_LENGTH))
    ids[1] = np.tile(rng.integers(1, len(_PROBE_TOKENS), size=8), PROBE_LENGTH // 8 + 1)[:PROBE_LENGTH]
    ids[2] = rng.integers(1, 12, size=PROBE_LENGTH)
    ids[:, 0] = np.where(np.arange(PROBE_BATCH) % 2 == 0, 0, ids[:, 0])
    ids.setflags(write=False)
    return ids


def library_probe(programs) -> tuple[Vocab, list[np.ndarray]]:
    """A probe vocabulary and windows for comparing `programs` (CheckedPrograms).

    The fixed probe tokens plus every short string literal the programs
    mention (as written, with a space marker, capitalised), so a program that
    looks for "mom" is not mistaken for a duplicate of one that looks for "dad"
    just because neither word occurs in the probe.
    """
    import ast

    extra: dict[str, None] = {}
    for program in programs:
        for node in ast.walk(program.module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and 0 < len(node.value) <= 24 \
                    and node.value != program.docstring:
                word = node.value
                for variant in (word, "Ġ" + word.lstrip("Ġ▁ "), "Ġ" + word.lstrip("Ġ▁ ").capitalize()):
                    extra.setdefault(variant, None)
    tokens = tuple(dict.fromkeys(_PROBE_TOKENS + tuple(extra)))
    vocab = Vocab(tokens=tokens, special_ids=frozenset({0}), name="attnc-library-probe")
    rng = np.random.default_rng(len(tokens))
    ids = np.concatenate([probe_ids(), rng.integers(0, len(tokens), size=(PROBE_BATCH, PROBE_LENGTH))])
    # Windows dense in the library's own words: pools of 12 tokens drawn from all of them.
    pools = rng.integers(0, len(tokens), size=(PROBE_BATCH, 12))
    dense = np.take_along_axis(pools, rng.integers(0, 12, size=(PROBE_BATCH, PROBE_LENGTH)), axis=1)
    # Two long windows, so position offsets up to LONG_PROBE_LENGTH are told apart.
    long = rng.integers(0, len(tokens), size=(2, LONG_PROBE_LENGTH))
    return vocab, [np.concatenate([ids, dense]), long]


def fingerprint(matrices: np.ndarray) -> str:
    """A hash of matrices rounded to 1e-9: equal fingerprints <=> same outputs on the probe."""
    rounded = np.round(np.asarray(matrices, dtype=np.float64), 9) + 0.0
    return hashlib.sha256(rounded.tobytes()).hexdigest()
