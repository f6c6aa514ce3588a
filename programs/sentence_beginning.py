import numpy as np


def sentence_beginning(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Sentence-start head (paper form): each token attends strongly to the first
    token of its sentence and weakly to the rest of the sentence so far.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    start = 0
    for i in range(n):
        if i > 0 and tokens[i - 1].lstrip("Ġ") in {".", "!", "?", '."', '!"', '?"'}:
            start = i
        for j in range(start, i + 1):
            out[i, j] = 0.1
        out[i, start] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Attend to the beginning of the current sentence", out
