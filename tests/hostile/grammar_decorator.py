"""Hostile: grammar decorator. Must never run."""
@open('MARKER', 'w').close
def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
