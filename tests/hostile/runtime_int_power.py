"""Hostile: a computed integer power. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = w.n ** (w.n ** 9)
    return 1.0
