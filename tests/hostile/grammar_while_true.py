"""Hostile: grammar while true. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    while True:
        pass
    return 1.0
