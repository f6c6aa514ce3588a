"""Hostile: grammar shift bomb. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 1 << 10**9
    return 1.0
