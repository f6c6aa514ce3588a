"""Hostile: grammar nonlocal. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    nonlocal w
    return 1.0
