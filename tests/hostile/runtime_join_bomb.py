"""Hostile: str.join growth. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    parts = ['x' * 100000] * 100
    s = ''.join(parts)
    for i in range(20):
        s = s.join([s, s])
    return 1.0
