"""Hostile: catching the guard that refuses tokenizing other text. Must be stopped by the guard."""
import numpy as np


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    ids = []
    try:
        ids = tokenizer.encode("/tmp/attnc_pwned_runtime_except_lookup_around_forbidden_access")
    except (LookupError, ValueError, TypeError, RuntimeError, Exception):
        ids = tokenizer.encode(sentence)
    return "x", np.eye(len(ids))
