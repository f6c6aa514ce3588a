"""Hostile: grammar decorator name. Must never run."""
@staticmethod
def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
