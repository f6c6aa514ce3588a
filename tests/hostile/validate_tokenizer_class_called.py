"""Hostile: instantiating a declared tokenizer class. Must never run."""
import numpy as np
from transformers import PreTrainedTokenizerFast


def hostile(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    t = PreTrainedTokenizerFast(tokenizer_file="/tmp/attnc_pwned_validate_tokenizer_class_called")
    return "x", np.eye(3)
