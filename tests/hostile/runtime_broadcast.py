"""Hostile: broadcasting two large vectors. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.ones(200000)
    b = a[:, None] * a[None, :]
    return 1.0
