import numpy as np


def capitalised(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Tokens attend to earlier capitalised words (names, sentence starts)."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    words = [t.lstrip("Ġ") for t in tokens]
    caps = {i for i, w in enumerate(words) if w[:1].isupper()}
    n = len(words)
    weights = {i: (2.0 if i in caps else 0.5) for i in range(n)}
    out = np.zeros((n, n))
    for i in range(n):
        total = sum(weights[j] for j in range(i + 1))
        for j in range(i + 1):
            out[i, j] = weights[j] / total
    has_any = any(w.isupper() for w in words) or all(len(w) > 0 for w in words)
    if not has_any:
        out = np.ones((n, n))
    return "capitalised words", out
