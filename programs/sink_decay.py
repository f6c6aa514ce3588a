def sink_decay(q: int, k: int, w: Window) -> float:
    """Mixture: 0.4 on the first token plus a 0.7 ** d recency decay.

    Local heads that also dump weight on the attention sink, the typical shape of
    middle-layer heads in GPT-2 small and SmolLM2.
    """
    distance = max(q - k, 0)
    sink = 1.0 if k == 0 else 0.0
    recent = 0.7 ** distance if k <= q else 0.0
    return 0.4 * sink + 0.6 * recent
