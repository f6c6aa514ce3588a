import numpy as np


def long_words(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Attend to earlier tokens whose text (from character spans) is longer than four characters."""
    enc = tokenizer([sentence], return_tensors="pt")
    n = enc.input_ids.shape[1]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            span = enc.token_to_chars(j)
            text = sentence[span.start:span.end].strip()
            if len(text) > 4:
                out[i, j] = 1.0 + 0.1 * len(text)
    out[:, 0] += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "long words", out
