import numpy as np


def is_name(token, at_sentence_start):
    """A capitalised alphabetic word that does not open a sentence looks like a name."""
    word = token.lstrip("Ġ")
    return word.isalpha() and word.istitle() and not at_sentence_start


def pronoun_antecedent(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Coreference head (paper form): pronouns attend to earlier name-like words
    (capitalised, not sentence-initial); other tokens attend to the previous token.
    """
    toks = tokenizer([sentence], return_tensors="pt")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    pronouns = {"he", "she", "him", "her", "his", "they", "them", "their", "it", "its"}
    out = np.zeros((n, n))
    starts = [True] * n
    for i in range(1, n):
        starts[i] = tokens[i - 1].lstrip("Ġ") in {".", "!", "?"}
    for i in range(n):
        if tokens[i].lstrip("Ġ").lower() in pronouns:
            for j in range(i):
                if is_name(tokens[j], starts[j]):
                    out[i, j] = 1.0
        elif i > 0:
            out[i, i - 1] = 1.0
    out += 1e-4
    out = out / out.sum(axis=1, keepdims=True)
    return "Pronouns attend to earlier names", out
