"""Hostile: validate np object dtype. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.array([w], dtype=object)
    return 1.0
