"""Hostile: validate dunder name. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    m = __name__
    return 1.0
