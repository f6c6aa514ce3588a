"""Hostile: validate tokenizer dict. Must never run."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    d = tokenizer.__dict__
    return 'x', np.zeros((1, 1))
