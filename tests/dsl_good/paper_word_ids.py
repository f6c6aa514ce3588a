import numpy as np


def same_word(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Tokens attend to every earlier token of the same word (word_ids)."""
    enc = tokenizer([sentence], return_tensors="pt")
    word_ids = enc.word_ids()
    n = len(word_ids)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            if word_ids[i] is not None and word_ids[i] == word_ids[j]:
                out[i, j] = 1.0
    special = set(tokenizer.all_special_ids)
    ids = enc.input_ids[0]
    for j in range(n):
        if int(ids[j]) in special:
            out[:, j] += 0.5
    return "same word", out
