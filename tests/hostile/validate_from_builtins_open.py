"""Hostile: validate from builtins open. Must never run."""
from builtins import open


def hostile(q: int, k: int, w: Window) -> float:
    open('MARKER', 'w').write('x')
    return 1.0
