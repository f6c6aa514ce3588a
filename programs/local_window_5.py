def local_window_5(q: int, k: int, w: Window) -> float:
    """Local window: uniform attention over the current token and the 4 before it.

    A slightly wider local-averaging head (phrase-level context).
    """
    return 1.0 if k <= q and k > q - 5 else 0.0
