"""Hostile: list(range(10**8)). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = list(range(10**8))
    return 1.0
