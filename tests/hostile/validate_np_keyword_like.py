"""Hostile: validate np keyword like. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.zeros(3, like=w)
    return 1.0
