"""Hostile: grammar import numpy and os. Must never run."""
import numpy as np, os


def hostile(q: int, k: int, w: Window) -> float:
    os.system('touch MARKER')
    return 1.0
