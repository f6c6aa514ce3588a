"""Hostile: validate huge negative exponent. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 10.0 ** -1000
    return 1.0
