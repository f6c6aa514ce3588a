def same_token_earlier(q: int, k: int, w: Window) -> float:
    """Duplicate-token head: each token attends to earlier copies of itself.

    Detects repeated tokens (names, repeated words); queries with no earlier
    copy fall back to themselves.
    """
    return 1.0 if k < q and w.ids[k] == w.ids[q] else 0.0
