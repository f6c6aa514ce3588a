"""Hostile: validate format builtin. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = format(w, '')
    return 1.0
