def first_token(q: int, k: int, w: Window) -> float:
    """Attention sink: every query puts its weight on position 0.

    The most common head in small causal LMs (often most of the heads in the
    middle and late layers): the first token acts as a no-op "rest" position.
    """
    return 1.0 if k == 0 else 0.0
