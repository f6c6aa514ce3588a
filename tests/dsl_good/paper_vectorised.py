import numpy as np


def local_window(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Attention decays with distance within a local window of 3 tokens."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = toks.input_ids.shape[1]
    pos = np.arange(n)
    dist = pos[:, None] - pos[None, :]
    out = np.where((dist >= 0) & (dist < 3), np.exp(-dist.astype(float)), 0.0)
    out = np.tril(out)
    out = out / np.sum(out, axis=1, keepdims=True)
    return "local window", out
