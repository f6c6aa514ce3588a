"""Hostile: validate loop nesting through helper. Must never run."""
def cube(n: int) -> int:
    t = 0
    for i in range(n):
        for j in range(n):
            t += 1
    return t


def hostile(q: int, k: int, w: Window) -> float:
    t = 0
    for a in range(w.n):
        for b in range(w.n):
            t += cube(w.n)
    return 1.0
