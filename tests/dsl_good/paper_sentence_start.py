import numpy as np


def sentence_start(sentence: str, tokenizer) -> np.ndarray:
    """Each token attends to the first token of its sentence."""
    ids = tokenizer([sentence], return_tensors="pt")["input_ids"][0]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    n = len(tokens)
    out = np.zeros((n, n))
    first = 0
    for i in range(n):
        out[i][first] = 1.0
        if tokens[i].strip("Ġ") in [".", "!", "?"] or "Ċ" in tokens[i]:
            first = min(i + 1, n - 1)
    return out
