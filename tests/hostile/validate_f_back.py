"""Hostile: validate f back. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    g = (x for x in range(3))
    b = g.gi_frame.f_back
    return 1.0
