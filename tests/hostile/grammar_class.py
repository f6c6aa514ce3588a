"""Hostile: grammar class. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    class X:
        pass
    return 1.0
