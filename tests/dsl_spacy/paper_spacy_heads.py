import numpy as np
import spacy

nlp = spacy.load("en_core_web_sm")


def syntactic_head(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Each model token attends to the first model token of its word's syntactic head (spaCy parse)."""
    enc = tokenizer(sentence, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    n = len(offsets)
    doc = nlp(sentence)

    def token_at(char: int) -> int:
        for p, (start, end) in enumerate(offsets):
            if start <= char < end:
                return p
        return -1

    out = np.zeros((n, n))
    for tok in doc:
        me = token_at(tok.idx)
        head = token_at(tok.head.idx)
        if me >= 0 and head >= 0:
            out[me, head] += 1.0
            if tok.is_stop or tok.is_punct:
                out[me, me] += 0.5
        for child in tok.children:
            c = token_at(child.idx)
            if 0 <= c and head >= 0 and child.dep_ in ("det", "amod"):
                out[c, head] += 0.25
    for sent in doc.sents:
        first = token_at(doc[sent.start].idx)
        if first >= 0:
            out[first:, first] += 0.1
    for ent in list(doc.ents) + list(doc.noun_chunks):
        start = token_at(doc[ent.start].idx)
        if start >= 0 and len(ent.text) > 0:
            out[start, start] += 0.2
    return "syntactic head", out
