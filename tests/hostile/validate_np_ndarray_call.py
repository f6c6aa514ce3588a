"""Hostile: validate np ndarray call. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.ndarray((10**5, 10**5))
    return 1.0
