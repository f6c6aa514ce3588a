def same_token(q: int, k: int, w: Window) -> float:
    """Attend to the previous occurrence of the same token, else to the first token."""
    if w.prev_same[q] >= 0:
        return 1.0 if k == w.prev_same[q] else 0.0
    return 1.0 if k == 0 else 0.0
