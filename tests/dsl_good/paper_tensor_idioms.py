import numpy as np


def next_identical(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each token attends to earlier tokens with the same id, using tensor-style idioms."""
    inputs = tokenizer(sentence, return_tensors="pt")
    ids = inputs.input_ids.squeeze().numpy()
    mask = inputs["attention_mask"][0].cpu().numpy()
    ids = ids.reshape(-1)
    n = int(mask.sum())
    out = np.zeros((n, n))
    for i in range(n):
        matches = [j for j in range(i) if ids[j] == ids[i]]
        for j in matches:
            out[i, j] = 1.0
        out[i, i] += 1e-3
    return "same id", out
