"""Hostile: nested loops with computed bounds. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    m = w.n * 100000
    t = 0
    for i in range(m):
        for j in range(m):
            t += 1
    return 1.0
