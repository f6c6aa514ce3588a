def punctuation_tokens(q: int, k: int, w: Window) -> float:
    """Punctuation head: uniform attention over all earlier punctuation tokens.

    Commas, full stops and quotes are used as cheap summary positions by many
    heads in small LMs.
    """
    return 1.0 if k <= q and w.is_punct[k] else 0.0
