def two_back(q: int, k: int, w: Window) -> float:
    """Two-back head: each query attends to the token two positions earlier.

    A fixed positional offset head, common in the first layers of small LMs
    (builds bigram/trigram context).
    """
    return 1.0 if k == q - 2 else 0.0
