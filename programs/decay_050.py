def decay_050(q: int, k: int, w: Window) -> float:
    """Fast recency decay: weight halves with every token of distance (0.5 ** d).

    Models sharply local heads whose mass is mostly on the current and previous
    token, with a thin tail further back.
    """
    distance = max(q - k, 0)
    return 0.5 ** distance if k <= q else 0.0
