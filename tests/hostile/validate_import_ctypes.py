"""Hostile: validate import ctypes. Must never run."""
import ctypes


def hostile(q: int, k: int, w: Window) -> float:
    ctypes.CDLL(None).system('touch MARKER')
    return 1.0
