"""Hostile: tokenizing text other than the window. Must never run."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    toks = tokenizer(['import os'], return_tensors='pt')
    return 'x', np.zeros((1, 1))
