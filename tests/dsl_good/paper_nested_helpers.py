import numpy as np


def nearest_content(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Attend to the nearest earlier content word, scored by closures, picked with lambda keys and next()."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    n = len(tokens)
    stop = {"the", "a", "and", "on", "was", "it"}

    def clean(tok: str) -> str:
        return tok.replace("Ġ", "").replace("Ċ", "").lower()

    def is_content(p: int) -> bool:
        word = clean(tokens[p])
        return word.isalpha() and word not in stop

    def score(i: int, j: int) -> float:
        return 1.0 / (1 + i - j) if is_content(j) else 0.0

    out = np.zeros((n, n))
    for i in range(n):
        earlier = sorted(range(i + 1), key=lambda j: (-score(i, j), j))
        best = next((j for j in earlier if is_content(j)), i)
        out[i, best] = 1.0
        longest = max(range(i + 1), key=lambda j: len(clean(tokens[j])))
        out[i, longest] += 0.5
    return "nearest content word", out
