"""Hostile: np.arange(10**10). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.arange(10**10)
    return 1.0
