"""Hostile: validate vars. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    vars(w)['vocab']
    return 1.0
