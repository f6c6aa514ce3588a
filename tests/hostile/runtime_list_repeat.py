"""Hostile: [0] * 10**10. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = [0] * 10**10
    return 1.0
