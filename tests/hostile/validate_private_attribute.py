"""Hostile: validate private attribute. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    f = w._features
    return 1.0
