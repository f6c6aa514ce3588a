"""Hostile: string doubling. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = 'ab'
    for i in range(64):
        s = s + s
    return 1.0
