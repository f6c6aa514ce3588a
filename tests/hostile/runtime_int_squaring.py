"""Hostile: integer squaring. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 3
    for i in range(64):
        x = x * x
    return 1.0
