def sink_self(q: int, k: int, w: Window) -> float:
    """Mixture: half the weight on the first token (sink), half on the query itself.

    A common shape of late-layer heads that are "mostly off": they rest on the
    sink and keep some weight on the current token.
    """
    sink = 1.0 if k == 0 else 0.0
    itself = 1.0 if k == q else 0.0
    return 0.5 * sink + 0.5 * itself
