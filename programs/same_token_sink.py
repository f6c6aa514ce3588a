def same_token_sink(q: int, k: int, w: Window) -> float:
    """Mixture: duplicate-token head with an attention sink (0.5 on position 0).

    Real duplicate-token heads rest on the sink when the current token has not
    appeared before instead of attending to themselves.
    """
    sink = 1.0 if k == 0 else 0.0
    copy = 1.0 if k < q and w.ids[k] == w.ids[q] else 0.0
    return 0.5 * sink + copy
