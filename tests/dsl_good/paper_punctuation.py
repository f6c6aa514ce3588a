import numpy as np


def attend_to_last_punctuation(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each token attends to the most recent punctuation mark before it."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    punct = {".", ",", "!", "?", ";", ":", "(", ")", '"', "'"}
    last = -1
    out = np.zeros((n, n))
    for i, tok in enumerate(tokens):
        if last >= 0:
            out[i, last] = 1.0
        else:
            out[i, i] = 1.0
        if tok.strip("Ġ") in punct:
            last = i
    return "last punctuation", out
