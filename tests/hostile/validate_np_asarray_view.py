"""Hostile: validate np asarray view. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    v = w.ids.view(np.int8)
    return 1.0
