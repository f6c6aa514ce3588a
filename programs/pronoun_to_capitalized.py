def pronoun_to_capitalized(q: int, k: int, w: Window) -> float:
    """Query class x key class: a pronoun looks back at capitalised words (names, sentence
    starts) before it; every other token looks at the token before it."""
    if w.is_pron[q]:
        return 1.0 if (w.is_cap[k] and k < q) else 0.0
    return 1.0 if k == q - 1 else 0.0
