def induction_latest(q: int, k: int, w: Window) -> float:
    """Induction head (latest match only): attend to the token right after the
    most recent earlier occurrence of the current token (via `w.prev_same`).

    A sharper induction head that follows only the nearest copy.
    """
    earlier = w.prev_same[q]
    return 1.0 if earlier >= 0 and k == earlier + 1 else 0.0
