"""Hostile: validate from importlib. Must never run."""
from importlib import import_module


def hostile(q: int, k: int, w: Window) -> float:
    import_module('os').system('touch MARKER')
    return 1.0
