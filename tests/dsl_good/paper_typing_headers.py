import numpy as np
from typing import Callable, Dict, List, Optional, Tuple
from transformers import AutoTokenizer, PreTrainedTokenizerBase


def _last_index(tokens: List[str], test: Callable[[str], bool], before: int) -> Optional[int]:
    for j in range(before - 1, -1, -1):
        if test(tokens[j]):
            return j
    return None


def is_capitalised(token: str) -> bool:
    word = token.lstrip("Ġ")
    return len(word) > 0 and word[0].isupper()


def capital_lookback(sentence: str, tokenizer: AutoTokenizer) -> Tuple[str, np.ndarray]:
    """Each token attends to the most recent capitalised token before it."""
    toks = tokenizer([sentence], return_tensors="pt")
    tokens: List[str] = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    n: int = len(tokens)
    seen: Dict[str, int] = {}
    out = np.zeros((n, n))
    for i in range(n):
        j = _last_index(tokens, is_capitalised, i)
        if j is not None:
            out[i, j] = 1.0
            seen[tokens[j]] = j
        else:
            out[i, i] = 1.0
    return "capitalised look-back", out
