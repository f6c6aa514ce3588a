def sink_uniform(q: int, k: int, w: Window) -> float:
    """Mixture: 0.4 of the weight on the first token, 0.6 spread evenly over the
    whole prefix (0..q).

    The shape of most middle-layer heads of SmolLM2-135M on plain prose: a strong
    attention sink plus diffuse attention over the context.
    """
    sink = 1.0 if k == 0 else 0.0
    spread = 1.0 / (q + 1) if k <= q else 0.0
    return 0.4 * sink + 0.6 * spread
