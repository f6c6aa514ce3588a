"""Hostile: validate comprehension nesting. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = [[[[0 for a in range(9)] for b in range(9)] for c in range(9)] for d in range(9)]
    return 1.0
