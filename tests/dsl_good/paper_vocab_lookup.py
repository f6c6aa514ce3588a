import numpy as np


def frequent_ids(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Tokens with small vocabulary ids (frequent merges) attract attention."""
    vocab = tokenizer.get_vocab()
    toks = tokenizer([sentence], return_tensors="np")
    tokens = tokenizer.convert_ids_to_tokens(toks["input_ids"][0])
    ids = tokenizer.convert_tokens_to_ids(tokens)
    pieces = tokenizer.batch_decode([[i] for i in ids])
    n = len(ids)
    size = len(tokenizer.vocab)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            rank = vocab.get(tokens[j], size)
            out[i, j] = 1.0 - rank / (size + 1)
            if pieces[j].strip() == "":
                out[i, j] *= 0.5
    return "frequent ids", out
