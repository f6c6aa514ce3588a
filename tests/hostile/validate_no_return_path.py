"""Hostile: validate no return path. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    if q > k:
        return 1.0
