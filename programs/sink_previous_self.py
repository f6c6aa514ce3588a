def sink_previous_self(q: int, k: int, w: Window) -> float:
    """Mixture: 0.5 on the first token, 0.3 on the previous token, 0.2 on the query.

    A three-part fit that matches many early-layer heads of small LMs better than
    any single pattern.
    """
    sink = 1.0 if k == 0 else 0.0
    previous = 1.0 if k == q - 1 else 0.0
    itself = 1.0 if k == q else 0.0
    return 0.5 * sink + 0.3 * previous + 0.2 * itself
