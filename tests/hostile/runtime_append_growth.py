"""Hostile: runtime append growth. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    lst = []
    for i in range(w.n * 100000):
        lst.append(i)
    return 1.0
