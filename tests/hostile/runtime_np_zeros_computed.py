"""Hostile: allocation with a computed size. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    size = w.n ** 8
    a = np.zeros((size, size))
    return 1.0
