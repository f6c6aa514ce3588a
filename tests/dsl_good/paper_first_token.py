import numpy as np


def attention_sink(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Most heads park attention on the first token (attention sink)."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    out = np.zeros((n, n))
    out[:, 0] = 1.0
    out[0, 0] = 1.0
    out = out + 0.01 * np.tril(np.ones((n, n)), k=-1)
    return "attention sink", out
