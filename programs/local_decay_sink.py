import numpy as np


def local_decay_sink(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Local head with a sink (paper form): weight 0.8 ** d on the 6 most recent
    tokens (d = distance) plus a fixed 0.5 on the first token.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        out[i, 0] = 0.5
        for d in range(6):
            j = i - d
            if j >= 0:
                out[i, j] += 0.8 ** d
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Recent tokens with decay, plus the first token", out
