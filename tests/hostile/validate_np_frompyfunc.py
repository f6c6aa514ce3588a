"""Hostile: validate np frompyfunc. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    f = np.frompyfunc(print, 1, 1)
    return 1.0
