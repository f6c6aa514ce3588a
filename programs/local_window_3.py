def local_window_3(q: int, k: int, w: Window) -> float:
    """Local window: uniform attention over the current token and the 2 before it.

    Short-range "n-gram" head of early layers that averages the last few tokens.
    """
    return 1.0 if k <= q and k > q - 3 else 0.0
