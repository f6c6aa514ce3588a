"""Hostile: validate module constant call. Must never run."""
EVIL = open('MARKER', 'w')


def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
