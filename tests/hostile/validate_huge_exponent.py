"""Hostile: validate huge exponent. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 2 ** 100000000
    return 1.0
