def decay_090(q: int, k: int, w: Window) -> float:
    """Slow recency decay: weight 0.9 ** d for a key d tokens back.

    Models broad "recent context" heads that fade over a sentence or two.
    """
    distance = max(q - k, 0)
    return 0.9 ** distance if k <= q else 0.0
