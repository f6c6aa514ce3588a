"""Hostile: validate huge int literal. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 10000000000000000000000
    return float(x)
