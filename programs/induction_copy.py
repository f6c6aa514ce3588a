import numpy as np


def induction_copy(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Induction head (paper form): a token attends to every token that followed
    an earlier occurrence of itself ("A B ... A" -> the second A looks at B);
    with no earlier occurrence it attends to the first token.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(1, i):
            if tokens[j - 1] == tokens[i]:
                out[i, j] = 1.0
        if out[i].sum() == 0:
            out[i, 0] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Attend to the token after earlier copies of the current token", out
