"""Hostile: validate annotation call. Must never run."""
def hostile(q: int, k: int, w: open('MARKER', 'w')) -> float:
    return 1.0
