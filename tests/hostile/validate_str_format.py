"""Hostile: validate str format. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = str.format('{0.__class__.__mro__}', w)
    return 1.0
