import numpy as np


def back_to_opener(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """Inside brackets or quotes, attend to the opener; found with a while loop and try/except guards."""
    ids = tokenizer.encode(sentence)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    n = len(tokens)
    pairs = {")": "(", "]": "[", '"': '"'}
    out = np.zeros((n, n))
    for i in range(n):
        j = i - 1
        found = -1
        while j >= 0:
            stripped = tokens[j].replace("Ġ", "")
            try:
                if stripped in pairs.values() and pairs[tokens[i].replace("Ġ", "")] == stripped:
                    found = j
                    break
            except KeyError:
                pass
            j -= 1
        try:
            out[i, found if found >= 0 else i] = 1.0
            previous = tokens[i - 1] if i > 0 else tokens[0]
            ratio = len(tokens[i]) / len(previous.replace("Ġ", ""))
        except (ZeroDivisionError, IndexError) as problem:
            ratio = 0.0
        out[i, i] += 1e-3 * min(ratio, 10.0)
    return "back to opener", out
