"""Hostile: validate window mro. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    base = w.__class__.__mro__[-1]
    return 1.0
