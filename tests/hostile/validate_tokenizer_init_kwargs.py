"""Hostile: validate tokenizer init kwargs. Must never run."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    d = tokenizer.init_kwargs
    return 'x', np.zeros((1, 1))
