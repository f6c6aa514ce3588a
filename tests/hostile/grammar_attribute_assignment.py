"""Hostile: grammar attribute assignment. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    w.n = 10**9
    return 1.0
