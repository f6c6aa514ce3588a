"""Hostile: 'a' * 10**9. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = 'a' * 10**9
    return 1.0
