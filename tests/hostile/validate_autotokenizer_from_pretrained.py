"""Hostile: loading a tokenizer (files, network) through a declared name. Must never run."""
import numpy as np
from transformers import AutoTokenizer


def hostile(sentence: str, tokenizer: AutoTokenizer) -> tuple[str, np.ndarray]:
    other = AutoTokenizer.from_pretrained("/tmp/attnc_pwned_validate_autotokenizer_from_pretrained")
    n = len(other.encode(sentence))
    return "x", np.eye(n)
