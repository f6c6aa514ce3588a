"""Hostile: grammar from numpy import star. Must never run."""
from numpy import *


def hostile(q: int, k: int, w: Window) -> float:
    save('MARKER', zeros(1))
    return 1.0
