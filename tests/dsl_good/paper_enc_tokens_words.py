import numpy as np


def word_heads(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each token attends to the first piece of its word and, weakly, to the previous word's first piece."""
    enc = tokenizer(sentence, return_tensors="pt")
    tokens = enc.tokens()
    words = enc.word_ids()
    n = len(tokens)
    first_piece = {}
    for position, word in enumerate(words):
        if word is not None and word not in first_piece:
            first_piece[word] = position
    out = np.zeros((n, n))
    for i, word in enumerate(words):
        head = first_piece.get(word, i)
        out[i, head] = 1.0
        previous = first_piece.get(word - 1) if word is not None else None
        if previous is not None:
            out[i, previous] += 0.25
    return "word heads", out
