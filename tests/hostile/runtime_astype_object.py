"""Hostile: an object-dtype array. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = w.ids.astype('O')
    return 1.0
