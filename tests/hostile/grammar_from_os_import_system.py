"""Hostile: grammar from os import system. Must never run."""
from os import system


def hostile(q: int, k: int, w: Window) -> float:
    system('touch MARKER')
    return 1.0
