import numpy as np


def bracket_opener(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Bracket-matching head (paper form): inside "( ... )", "[ ... ]" or
    "{ ... }" each token attends to the innermost unclosed opening bracket;
    outside brackets it attends to itself.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    openers = {"(", "[", "{"}
    closers = {")", "]", "}"}
    out = np.zeros((n, n))
    for i in range(n):
        depth = 0
        found = False
        for j in reversed(range(i)):
            piece = tokens[j].lstrip("Ġ")
            if found:
                continue
            if piece in closers:
                depth += 1
            elif piece in openers:
                if depth == 0:
                    out[i, j] = 1.0
                    found = True
                else:
                    depth -= 1
        if not found:
            out[i, i] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Attend to the innermost open bracket", out
