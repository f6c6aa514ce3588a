import numpy as np


def glued_to_previous(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """A token that starts exactly where the previous one ends, with no space, attends to it."""
    enc = tokenizer(sentence, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    n = len(offsets)
    out = np.zeros((n, n))
    for i in range(n):
        start, end = offsets[i]
        if i > 0 and offsets[i - 1][1] == start and not sentence[start:end].startswith(" "):
            out[i, i - 1] = 1.0
        else:
            out[i, i] = 1.0
    return "glued to previous", out
