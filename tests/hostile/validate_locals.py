"""Hostile: validate locals. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    locals()
    return 1.0
