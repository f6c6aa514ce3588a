"""Hostile: np.zeros((10**9, 10**9)). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.zeros((10**9, 10**9))
    return 1.0
