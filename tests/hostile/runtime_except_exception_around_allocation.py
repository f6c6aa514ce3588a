"""Hostile: `except Exception` around an allocation refusal. Must be stopped by the guard."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    n = len(tokenizer.encode(sentence))
    big = None
    try:
        big = np.zeros((100000, 100000))
    except Exception:
        big = np.zeros((n, n))
    return "x", np.eye(n)
