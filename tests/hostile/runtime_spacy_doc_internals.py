"""Hostile: reaching spaCy internals through a doc (vocab, the pipeline). Must be stopped by a guard."""
import numpy as np
import spacy

nlp = spacy.load("en_core_web_sm")


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    doc = nlp(sentence)
    strings = doc.vocab
    return "x", np.eye(len(tokenizer.encode(sentence)))
