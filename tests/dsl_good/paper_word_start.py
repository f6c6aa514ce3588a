import numpy as np


def word_start(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Tokens attend to the first token of their word (tokens starting with Ġ begin words)."""
    toks = tokenizer([sentence], return_tensors="pt")
    ids = toks.input_ids[0]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    n = len(tokens)
    out = np.zeros((n, n))
    start = 0
    for i in range(n):
        if tokens[i].startswith("Ġ") or i == 0:
            start = i
        out[i, start] = 1
    return "word start", out
