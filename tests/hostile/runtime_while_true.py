"""Hostile: while true (stopped by the loop bound). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    while True:
        pass
    return 1.0
