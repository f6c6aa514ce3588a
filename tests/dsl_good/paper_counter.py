import numpy as np


def frequent_tokens(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Attention goes to tokens that occur more than once so far (a dict counter)."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    n = len(tokens)
    counts: dict[str, int] = {}
    out = np.zeros((n, n))
    for i in range(n):
        key = tokens[i].lower()
        counts[key] = counts.get(key, 0) + 1
        for j in range(i + 1):
            if counts.get(tokens[j].lower(), 0) > 1:
                out[i, j] += 2.0
            else:
                out[i, j] += 0.1
    out = out / out.sum(axis=1, keepdims=True)
    return "frequent tokens", out
