import numpy as np
import spacy

nlp = spacy.load("en_core_web_sm")


def head_word(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each token attends to the first token of its word's syntactic head (what native `w.dep_head` gives)."""
    enc = tokenizer(sentence, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    n = len(offsets)
    doc = nlp(sentence)
    owner = {}
    for tok in doc:
        for c in range(tok.idx, tok.idx + len(tok.text)):
            owner[c] = tok.i
    first = {}
    covering = []
    for p, (start, end) in enumerate(offsets):
        word = -1
        for c in range(start, min(end, len(sentence))):
            if not sentence[c].isspace():
                word = owner.get(c, -1)
                break
        covering.append(word)
        if word >= 0 and word not in first:
            first[word] = p
    out = np.zeros((n, n))
    for p in range(n):
        if covering[p] >= 0:
            head = doc[covering[p]].head.i
            if head in first:
                out[p, first[head]] = 1.0
    return "spaCy head word", out
