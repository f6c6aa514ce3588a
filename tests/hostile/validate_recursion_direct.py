"""Hostile: validate recursion direct. Must never run."""
def boom(x: int) -> int:
    return boom(x + 1)


def hostile(q: int, k: int, w: Window) -> float:
    boom(0)
    return 1.0
