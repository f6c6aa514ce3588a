def sink_previous(q: int, k: int, w: Window) -> float:
    """Mixture: half the weight on the first token (sink), half on the previous token.

    Many "previous token" heads in real models park a large share of their
    attention on position 0 as well.
    """
    sink = 1.0 if k == 0 else 0.0
    previous = 1.0 if k == q - 1 else 0.0
    return 0.5 * sink + 0.5 * previous
