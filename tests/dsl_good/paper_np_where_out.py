import numpy as np


def distance_decay(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Weights decay with distance; rows normalised with np.divide(where=, out=)."""
    n = len(tokenizer(sentence)["input_ids"])
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    raw = np.where(j <= i, 1.0 / (1.0 + i - j), 0.0)
    raw[raw < 0.2] = 0.0
    rows = raw.sum(axis=1, keepdims=True)
    out = np.divide(raw, rows, out=np.zeros_like(raw), where=rows != 0)
    return "distance decay", out
