"""Hostile: a huge comprehension. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = [0 for i in range(9000) for j in range(9000)]
    return 1.0
