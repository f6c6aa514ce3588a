def local_window_8(q: int, k: int, w: Window) -> float:
    """Local window: uniform attention over the current token and the 7 before it.

    Clause-level local-averaging head, typical of early-middle layers.
    """
    return 1.0 if k <= q and k > q - 8 else 0.0
