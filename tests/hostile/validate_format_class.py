"""Hostile: validate format class. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = '{0.__class__}'.format(w)
    return 1.0
