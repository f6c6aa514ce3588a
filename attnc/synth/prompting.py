"""Prompts for LLM synthesis: the language's rules, a head summary, and feedback.

The system prompt is a condensed docs/dsl.md: the two accepted forms, what
`w` offers, the safe subset and the output rule, with two example programs.
The user prompt describes one head; in feedback rounds it adds the best
program so far with its IoU and why earlier candidates were rejected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

SYSTEM_PROMPT = '''You write small Python programs that reproduce the attention pattern of one transformer attention head.
A program maps a window of n tokens to an n x n matrix of non-negative weights: row q says how query position q spreads its attention over key positions k. The runtime then clips negatives to 0, applies the causal mask (k <= q), and normalizes each row to sum 1 (an all-zero row puts all weight on k = q). Fidelity is measured by IoU between your normalized matrix and the head's attention (sum of min / sum of max per row), so match both where the mass goes and how it is spread.

Write one Python file with exactly one entry function, in one of two forms.

Form 1 (preferred), the weight query q gives key k:
def name(q: int, k: int, w: Window) -> float
What w offers (p is a position, 0 <= p < w.n):
  w.n window length; w.ids[p] token id; w.tok[p] token string as the tokenizer spells it ("Ġthe": Ġ = leading space, Ċ = newline)
  w.word_start[p] bool, token starts a word; w.is_punct[p] bool, punctuation/symbols only
  w.word_id[p] index of the word containing p; w.sent_start[p] bool, first token of a sentence; w.sent_id[p] index of the sentence
  w.last_punct[p] latest position < p that is punctuation (-1 if none); w.prev_same[p] latest position < p with the same token id (-1 if none)
  w.open_bracket[p] position of the innermost bracket/quote still open before p (-1 if none)
Token strings support lower, upper, strip, startswith, endswith, isalpha, isdigit, isupper, islower, istitle, isspace, isalnum, replace, lstrip, rstrip, len, and `in` on literal sets.

Form 2, building the whole matrix:
def name(sentence: str, tokenizer) -> tuple[str, np.ndarray]
using toks = tokenizer([sentence], return_tensors="pt"), n = len(toks.input_ids[0]),
tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0]), out = np.zeros((n, n)), loops, and return (description, out).

Rules: a safe subset of Python. Allowed header lines: import numpy as np, from typing import ... . No other imports, no open/exec/eval/getattr, no dunder names or attributes, no classes, no while loops, no recursion, loops only over range/enumerate/zip/reversed/lists, at most 3 nested loops. Helper functions are allowed. Give the entry function a short descriptive snake_case name and a one-line docstring saying what the head does.

Example (form 1):
```python
def previous_token(q: int, k: int, w: Window) -> float:
    """Each query attends to the token just before it."""
    return 1.0 if k == q - 1 else 0.0
```

Example (form 2):
```python
import numpy as np

def same_token_earlier(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each token attends to earlier copies of itself."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
            if tokens[i] == tokens[j]:
                out[i, j] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "same token earlier", out
```

Reply with your reasoning in at most three sentences, then the program in one ```python block.'''


@dataclass(frozen=True)
class Feedback:
    """What a feedback round tells the LLM about the previous round of one head.

    Attributes:
        best_name, best_source, best_iou: the best program so far (source may be None).
        rejections: short reasons of rejected candidates (validation messages, ...).
    """

    best_name: str | None
    best_source: str | None
    best_iou: float
    rejections: tuple[str, ...] = field(default_factory=tuple)


def build_messages(summary_text: str, feedback: Feedback | None = None, *, max_rejections: int = 6) -> list[dict]:
    """Chat messages asking for one program for the head described by `summary_text`.

    Args:
        summary_text: a head summary (attnc.synth.summary).
        feedback: the previous round's outcome, for iterative mode.
        max_rejections: how many rejection reasons to quote.

    Returns:
        OpenAI chat messages: system, user.
    """
    parts = [summary_text, ""]
    if feedback is not None:
        if feedback.best_source:
            parts += [
                f"The best program so far, {feedback.best_name}, reaches IoU {feedback.best_iou:.3f}:",
                "```python",
                feedback.best_source.strip(),
                "```",
            ]
        if feedback.rejections:
            parts.append("Earlier candidates were rejected; avoid these mistakes:")
            parts += [f"- {reason}" for reason in feedback.rejections[:max_rejections]]
        parts += ["Write a different program that fits this head better.", ""]
    else:
        parts.append("Write one program that reproduces this head's attention pattern as closely as possible.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(parts).strip()}]


def prompt_sha256(messages: list[dict]) -> str:
    """sha256 of the messages as canonical JSON (recorded in program headers)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
