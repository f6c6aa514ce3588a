"""Hostile: validate dunder parameter. Must never run."""
def hostile(q: int, k: int, __w: Window) -> float:
    open('MARKER', 'w')
    return 1.0
