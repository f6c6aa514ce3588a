"""Hostile: exception classes used as values (subclass walks, calls). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    e = KeyError("x")
    s = Exception.mro
    return 1.0
