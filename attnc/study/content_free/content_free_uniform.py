def content_free_uniform(q: int, k: int, w: Window) -> float:
    """Content-free baseline: every query spreads its weight evenly over itself and all earlier tokens."""
    return 1.0
