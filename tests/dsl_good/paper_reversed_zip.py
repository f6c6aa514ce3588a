import numpy as np


def next_same_word(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Tokens attend to the previous token with the same lowercased text, else to themselves."""
    toks = tokenizer([sentence], return_tensors="pt")
    ids = toks.input_ids[0].tolist()
    tokens = tokenizer.convert_ids_to_tokens(ids)
    n = len(ids)
    out = np.zeros((n, n))
    for i, (tok, tid) in enumerate(zip(tokens, ids)):
        found = False
        for j in reversed(range(i)):
            if tokens[j].lower() == tok.lower() and ids[j] != -1:
                out[i, j] = 1.0
                found = True
                break
        if not found:
            out[i, i] = 1.0
    return "previous same word", out
