"""Hostile: other spaCy entry points (download, blank pipelines, the registry). Must never run."""
import numpy as np
import spacy


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    spacy.cli.download("/tmp/attnc_pwned_validate_spacy_other_members")
    nlp = spacy.blank("en")
    r = spacy.registry
    return "x", np.eye(len(tokenizer.encode(sentence)))
