"""Hostile: validate format globals. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = '{0.__init__.__globals__}'.format(w)
    return 1.0
