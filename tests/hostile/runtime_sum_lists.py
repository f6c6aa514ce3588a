"""Hostile: sum() of lists. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = sum([[1] * 1000] * 1000, [])
    return 1.0
