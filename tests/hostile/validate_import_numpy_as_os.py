"""Hostile: validate import numpy as os. Must never run."""
import numpy as os


def hostile(q: int, k: int, w: Window) -> float:
    os.save('MARKER', os.zeros(1))
    return 1.0
