"""Hostile: validate import importlib. Must never run."""
import importlib


def hostile(q: int, k: int, w: Window) -> float:
    importlib.import_module('os').system('touch MARKER')
    return 1.0
