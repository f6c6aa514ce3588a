def content_free_first(q: int, k: int, w: Window) -> float:
    """Content-free baseline: every query puts all its weight on the first token (the attention sink)."""
    return 1.0 if k == 0 else 0.0
