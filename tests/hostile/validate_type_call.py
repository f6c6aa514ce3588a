"""Hostile: validate type call. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    t = type(w)
    return 1.0
