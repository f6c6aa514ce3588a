def uniform_causal(q: int, k: int, w: Window) -> float:
    """Uniform causal head: equal weight on every position up to the query.

    Averaging ("bag of words") heads of early layers; also the baseline a
    fitted program should beat.
    """
    return 1.0 if k <= q else 0.0
