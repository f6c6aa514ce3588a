import numpy as np


def same_word_pieces(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Tokens attend to earlier pieces of the same word, else to themselves."""
    enc = tokenizer(sentence, return_tensors="pt")
    tokens = enc.tokens()
    words = enc.word_ids()
    n = len(tokens)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            if words[i] is not None and words[i] == words[j]:
                out[i, j] = 1.0
        if out[i].sum() == 0:
            out[i, i] = 1.0
    out = out / out.sum(axis=1, keepdims=True)
    return "same word pieces", out
