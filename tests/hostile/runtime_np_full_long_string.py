"""Hostile: runtime np full long string. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = 'x' * 200000
    a = np.full((500, 500), s)
    return 1.0
