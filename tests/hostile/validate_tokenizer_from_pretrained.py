"""Hostile: validate tokenizer from pretrained. Must never run."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    t = tokenizer.from_pretrained('gpt2')
    return 'x', np.zeros((1, 1))
