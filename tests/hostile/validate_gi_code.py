"""Hostile: validate gi code. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    g = (x for x in range(3))
    c = g.gi_code
    return 1.0
