"""Hostile: np.outer of two large vectors. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.ones(200000)
    b = np.outer(a, a)
    return 1.0
