import numpy as np


def recent_punctuation(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Last-punctuation head (paper form): each token attends to the most recent
    punctuation token before it (comma, full stop, quote...), or to the first
    token when there is none yet.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    punctuation = {".", ",", "!", "?", ";", ":", '"', "'", "(", ")", "-"}
    out = np.zeros((n, n))
    last = 0
    for i in range(n):
        out[i, last] = 1.0
        if tokens[i].lstrip("Ġ") in punctuation:
            last = i
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Attend to the most recent punctuation mark", out
