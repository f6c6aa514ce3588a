import numpy as np


def line_start(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Line/paragraph-start head (paper form): each token attends to the first
    token of its line, i.e. the token right after the latest newline ("Ċ").
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    start = 0
    for i in range(n):
        out[i, start] = 1.0
        if tokens[i].endswith("Ċ"):
            start = min(i + 1, n - 1)
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Attend to the start of the current line", out
