import numpy as np
from transformers import PreTrainedTokenizerBase


def same_token_earlier(sentence: str, tokenizer: PreTrainedTokenizerBase) -> tuple[str, np.ndarray]:
    """Each token attends to earlier copies of itself."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
            if tokens[i] == tokens[j]:
                out[i, j] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "same token earlier", out
