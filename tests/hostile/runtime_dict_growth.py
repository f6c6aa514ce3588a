"""Hostile: runtime dict growth. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    d = {}
    for i in range(10**7):
        d[i] = i
    return 1.0
