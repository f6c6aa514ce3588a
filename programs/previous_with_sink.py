def previous_with_sink(q: int, k: int, w: Window) -> float:
    """Mixture: a previous-token head that leaks 0.15 of its weight to the first token.

    Matches the strong previous-token heads of small LMs (e.g. SmolLM2 16.0),
    which are never perfectly sharp.
    """
    sink = 1.0 if k == 0 else 0.0
    previous = 1.0 if k == q - 1 else 0.0
    return 0.15 * sink + 0.85 * previous
