def content_free_previous(q: int, k: int, w: Window) -> float:
    """Content-free baseline: every query attends to the token before it (the first token to itself)."""
    return 1.0 if k == q - 1 else 0.0
