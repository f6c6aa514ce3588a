"""Hostile: grammar import os. Must never run."""
import os


def hostile(q: int, k: int, w: Window) -> float:
    os.system('touch MARKER')
    return 1.0
