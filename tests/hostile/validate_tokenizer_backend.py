"""Hostile: validate tokenizer backend. Must never run."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    b = tokenizer.backend_tokenizer
    b.save('/tmp/attnc_pwned_validate_tokenizer_backend')
    return 'x', np.zeros((1, 1))
