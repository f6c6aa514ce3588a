"""Hostile: validate call result call. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = w.tok[0].lower()()
    return 1.0
