import re

import numpy as np

WORD = re.compile(r"^[ĠĊ]?([A-Za-z]+)$")
NUMBER = re.compile(r"\d+")


def regex_classes(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Words attend to earlier words of the same length class; numbers and punctuation to themselves."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    n = len(tokens)
    out = np.zeros((n, n))
    for i in range(n):
        m = WORD.match(tokens[i])
        if m is None or NUMBER.search(tokens[i]):
            out[i, i] = 1.0
            continue
        length = len(m.group(1))
        for j in range(i):
            other = re.sub(r"^[ĠĊ]", "", tokens[j])
            if re.fullmatch(r"[a-z]+", other, flags=re.IGNORECASE) and abs(len(other) - length) <= 1:
                out[i, j] = 1.0
        if re.search(r"[.!?]", sentence[:3]) or out[i].sum() == 0:
            out[i, i] = 1.0
    return "regex word classes", out
