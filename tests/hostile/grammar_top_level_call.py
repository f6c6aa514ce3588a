"""Hostile: grammar top level call. Must never run."""
open('MARKER', 'w')


def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
