"""Hostile: validate dunder function. Must never run."""
def __init__(q: int, k: int, w: Window) -> float:
    open('MARKER', 'w')
    return 1.0


def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
