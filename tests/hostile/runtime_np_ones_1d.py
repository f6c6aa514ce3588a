"""Hostile: np.ones(10**8). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.ones(10**8)
    return 1.0
