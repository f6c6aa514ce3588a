"""Hostile: validate default argument open. Must never run."""
def hostile(q: int, k: int, w: Window, f=open('MARKER', 'w')) -> float:
    return 1.0
