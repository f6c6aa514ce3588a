"""Hostile: %-formatting through a variable. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = w.tok[0]
    t = s % (w,)
    return 1.0
