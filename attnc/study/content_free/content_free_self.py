def content_free_self(q: int, k: int, w: Window) -> float:
    """Content-free baseline: every query attends to itself."""
    return 1.0 if k == q else 0.0
