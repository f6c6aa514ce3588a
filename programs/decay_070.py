def decay_070(q: int, k: int, w: Window) -> float:
    """Medium recency decay: weight 0.7 ** d for a key d tokens back.

    Models local heads that spread attention over roughly the last 3-5 tokens.
    """
    distance = max(q - k, 0)
    return 0.7 ** distance if k <= q else 0.0
