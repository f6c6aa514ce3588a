import numpy as np


def repeated_token_copies(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Duplicate-token head (paper form): each token attends to earlier copies of
    the same token string; tokens seen for the first time attend to themselves.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        found = False
        for j in range(i):
            if tokens[j] == tokens[i]:
                out[i, j] = 1.0
                found = True
        if not found:
            out[i, i] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Each token attends to earlier copies of itself", out
