import numpy as np
from typing import List


def clean(token: str) -> str:
    """Strip the byte-level space marker and lowercase."""
    return token.replace("Ġ", "").replace("Ċ", "").lower()


def is_content(token: str) -> bool:
    word = clean(token)
    return len(word) > 2 and word.isalpha() and word not in ("the", "and", "was")


def content_words(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Every token attends to earlier content words, most to the nearest one."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens: List[str] = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    n = len(tokens)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            if is_content(tokens[j]):
                out[i, j] = 1.0 / (1 + i - j)
    out[:, 0] += 1e-3
    out = out / out.sum(axis=1, keepdims=True)
    return "content words", out
