"""Hostile: spacy.load of another name (a path, a package that runs code). Must never run."""
import numpy as np
import spacy

nlp = spacy.load("/tmp/attnc_pwned_validate_spacy_load_other_model")


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    return "x", np.eye(len(tokenizer.encode(sentence)))
