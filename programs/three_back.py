def three_back(q: int, k: int, w: Window) -> float:
    """Three-back head: each query attends to the token three positions earlier.

    Fixed-offset positional head, rarer than previous-token but present in
    early layers of GPT-2-sized models.
    """
    return 1.0 if k == q - 3 else 0.0
