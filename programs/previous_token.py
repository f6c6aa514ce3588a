def previous_token(q: int, k: int, w: Window) -> float:
    """Previous-token head: each query attends to the token just before it.

    The classic layer-0/1 head that feeds induction circuits (position 0 has
    no predecessor and falls back to itself).
    """
    return 1.0 if k == q - 1 else 0.0
