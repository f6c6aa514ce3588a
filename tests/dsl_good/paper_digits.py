import numpy as np


def digits_and_numbers(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Numbers attend to earlier numbers; other tokens attend uniformly to the past."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    n = len(tokens)
    out = np.tril(np.ones((n, n))) * 0.1
    numbers = [i for i in range(n) if tokens[i].strip("Ġ").isdigit()]
    for i in numbers:
        for j in numbers:
            if j <= i:
                out[i, j] = 1.0
    out = np.clip(out, 0, None)
    return "numbers", out / out.sum(axis=1, keepdims=True)
