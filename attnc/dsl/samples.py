"""A tiny built-in vocabulary and sample windows for `attnc check --run` and tests.

Byte-level-style tokens ("Ġ" marks a leading space, "Ċ" a newline), so
programs written for GPT-2/Llama-3-style tokenizers see familiar strings.
"""

from __future__ import annotations

from attnc.window import Vocab

SAMPLE_TOKENS = (
    "<|endoftext|>", "The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat", ".", "ĠIt", "Ġwas", "Ġhappy", "!",
    "Ġ\"", "Hello", ",", "Ġworld", "\"", "Ġshe", "Ġsaid", "Ġ(", "quietly", ")", "Ġand", "Ġhe", "Ġlaughed",
    "?", "Ċ", "ĠThe", "Ġdog", "'s", "Ġbone", "Ġ[", "1", "]", "Ġ2024", "Ġruns", "Ġquickly",
)

SAMPLE_VOCAB = Vocab(tokens=SAMPLE_TOKENS, special_ids=frozenset({0}), name="attnc-samples",
                     special_tokens=(("bos_token", 0), ("eos_token", 0), ("pad_token", 0)))


def _ids(*tokens: str) -> list[int]:
    return [SAMPLE_TOKENS.index(t) for t in tokens]


#: name -> token ids; covers punctuation, quotes, brackets, newlines, repeats,
#: a one-token window and an all-identical window.
SAMPLE_WINDOWS: dict[str, list[int]] = {
    "cat": _ids("The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat", ".", "ĠIt", "Ġwas", "Ġhappy", "!"),
    "quote": _ids("Ġ\"", "Hello", ",", "Ġworld", "\"", "Ġshe", "Ġsaid", "Ġ(", "quietly", ")", "Ġand", "Ġhe",
                  "Ġlaughed", "?"),
    "lines": _ids("<|endoftext|>", "ĠThe", "Ġdog", "'s", "Ġbone", "Ġ[", "1", "]", "Ċ", "The", "Ġdog", "Ġruns",
                  "Ġquickly", "Ġ2024", "."),
    "one": _ids("Hello"),
    "same": _ids("Ġthe", "Ġthe", "Ġthe", "Ġthe", "Ġthe"),
}
