import numpy as np

PRONOUNS = {"he", "she", "it", "they", "him", "her", "them"}


def pronoun_to_noun(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Pronouns attend to earlier capitalised or content words; others to the first token."""
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    for i in range(n):
        word = tokens[i].replace("Ġ", "").lower()
        if word in PRONOUNS:
            for j in range(i):
                candidate = tokens[j].replace("Ġ", "")
                if candidate.isalpha() and candidate.lower() not in PRONOUNS:
                    out[i, j] = 1.0
        else:
            out[i, 0] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return ("Pronoun resolution pattern", out)
