"""Hostile: str() of a list of long strings. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = 'x' * 200000
    t = str([s] * 200000)
    return 1.0
