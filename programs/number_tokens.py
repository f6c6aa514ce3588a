def number_tokens(q: int, k: int, w: Window) -> float:
    """Number head: digit tokens attend to earlier digit tokens; other tokens attend
    to themselves.

    Small LMs have heads that link numbers in a text (counting, dates, lists).
    """
    digit_query = w.tok[q].lstrip("Ġ▁").isdigit()
    digit_key = w.tok[k].lstrip("Ġ▁").isdigit()
    if digit_query:
        return 1.0 if k < q and digit_key else 0.0
    return 1.0 if k == q else 0.0
