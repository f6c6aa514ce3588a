import numpy as np
from collections import Counter, defaultdict


def repeated_tokens(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Repeated tokens attend to their earlier copies; the most common token is a weak sink."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    n = len(tokens)
    counts = Counter(tokens)
    positions = defaultdict(list)
    out = np.zeros((n, n))
    common = counts.most_common(1)[0][0]
    for i, tok in enumerate(tokens):
        for j in positions[tok]:
            out[i, j] = 1.0 / counts[tok]
        positions[tok].append(i)
        if positions[common]:
            out[i, positions[common][0]] += 0.1
    return "repeated tokens", out
