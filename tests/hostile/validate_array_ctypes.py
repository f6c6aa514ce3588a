"""Hostile: validate array ctypes. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    p = w.ids.ctypes.data
    return 1.0
