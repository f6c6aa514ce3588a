"""Hostile: a loop of 10**12 iterations. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    t = 0.0
    for i in range(10**12):
        t += 1.0
    return t
