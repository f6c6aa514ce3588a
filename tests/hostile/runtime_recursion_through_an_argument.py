"""Hostile: recursion hidden by passing a helper to itself. Must be stopped by the recursion guard."""
def spin(f, n: int) -> int:
    return f(f, n + 1)


def hostile(q: int, k: int, w: Window) -> float:
    return float(spin(spin, 0))
