"""Hostile: validate import sys. Must never run."""
import sys


def hostile(q: int, k: int, w: Window) -> float:
    sys.modules['os'].system('touch MARKER')
    return 1.0
