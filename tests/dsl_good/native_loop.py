def nearest_content(q: int, k: int, w: Window) -> float:
    """Attend to the nearest earlier alphabetic token of length > 3."""
    best = -1
    for j in range(q):
        text = w.tok[j].strip("Ġ")
        if len(text) > 3 and text.isalpha():
            best = j
    return 1.0 if k == best else 0.0
