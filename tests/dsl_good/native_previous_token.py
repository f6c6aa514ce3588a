def previous_token(q: int, k: int, w: Window) -> float:
    """Previous-token head: each query attends to the token just before it."""
    return 1.0 if k == q - 1 else 0.0
