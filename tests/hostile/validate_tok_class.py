"""Hostile: validate tok class. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    w.tok.__class__.__dict__
    return 1.0
