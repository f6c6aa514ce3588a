"""Hostile: grammar relative import parent. Must never run."""
from .. import os


def hostile(q: int, k: int, w: Window) -> float:
    os.system('touch MARKER')
    return 1.0
