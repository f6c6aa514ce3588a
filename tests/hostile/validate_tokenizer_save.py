"""Hostile: validate tokenizer save. Must never run."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    tokenizer.save_pretrained('/tmp/attnc_pwned_validate_tokenizer_save')
    return 'x', np.zeros((1, 1))
