def self_token(q: int, k: int, w: Window) -> float:
    """Self head: each query attends only to its own position (diagonal pattern).

    Seen in early layers, where a head copies the current token's own
    embedding forward.
    """
    return 1.0 if k == q else 0.0
