"""Hostile: validate tokenizer private. Must never run."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    win = tokenizer._window
    return 'x', np.zeros((1, 1))
