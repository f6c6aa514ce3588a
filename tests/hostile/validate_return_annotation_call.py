"""Hostile: validate return annotation call. Must never run."""
def hostile(q: int, k: int, w: Window) -> open('MARKER', 'w'):
    return 1.0
